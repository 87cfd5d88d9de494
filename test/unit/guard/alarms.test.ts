import { describe, expect, it } from 'vitest';
import {
  type AlarmDefinition,
  alarmDefinitions,
  type Datapoint,
  DEFAULT_ALARM_DEFINITIONS,
  evaluate,
  evaluationWindow,
  InvalidAlarmOptionsError,
  statisticOf,
} from '../../../src/guard/index.ts';

const rule = (name: string): AlarmDefinition => {
  const def = DEFAULT_ALARM_DEFINITIONS.find((d) => d.name === name);
  if (def === undefined) throw new Error(`no rule ${name}`);
  return def;
};
const errors = rule('model-errors');
const latency = rule('latency');

const MINUTE = 60_000;
/** the five one-minute periods before `END`, each with its own requests and value */
const END = 1_700_000_040_000 - (1_700_000_040_000 % MINUTE);
const periods = (...points: [requests: number, value: number | undefined][]): Datapoint[] =>
  points.map(([requests, value], i) => ({
    start: END - (points.length - i) * MINUTE,
    requests,
    ...(value === undefined ? {} : { value }),
  }));

describe('the default rules', () => {
  it('watch error rate and p99 latency per model version, as a careful operator would', () => {
    expect(DEFAULT_ALARM_DEFINITIONS.map((d) => d.name)).toEqual(['model-errors', 'latency']);
    expect(errors).toMatchObject({
      metricName: 'ModelErrors',
      exactStatistic: 'Average',
      statistic: 'AVG',
      threshold: 0.05,
      comparison: 'GreaterThanThreshold',
      periodSeconds: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      minRequests: 20,
    });
    expect(latency).toMatchObject({
      metricName: 'Latency',
      exactStatistic: 'p99',
      statistic: 'MAX',
      threshold: 2000,
      periodSeconds: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      minRequests: 20,
    });
  });

  it('carry one Metrics Insights query each, grouped by model and version', () => {
    expect(errors.query).toBe(
      'SELECT AVG(ModelErrors) FROM SCHEMA("Maas", Model, Version) GROUP BY Model, Version ORDER BY AVG() DESC LIMIT 500',
    );
    expect(latency.query).toBe(
      'SELECT MAX(Latency) FROM SCHEMA("Maas", Model, Version) GROUP BY Model, Version ORDER BY MAX() DESC LIMIT 500',
    );
  });
});

describe('alarmDefinitions', () => {
  it('scales every period for the local stack and leaves the rest alone', () => {
    const scaled = alarmDefinitions({ timeScale: 1 / 60 });
    expect(scaled.map((d) => d.periodSeconds)).toEqual([1, 1]);
    expect(scaled.map((d) => d.threshold)).toEqual([0.05, 2000]);
    expect(scaled.map((d) => d.minRequests)).toEqual([20, 20]);
  });

  it('applies overrides by rule name', () => {
    const [e, l] = alarmDefinitions({
      overrides: { latency: { threshold: 800 }, 'model-errors': { minRequests: 5 } },
    });
    expect(e).toMatchObject({ threshold: 0.05, minRequests: 5 });
    expect(l).toMatchObject({ threshold: 800, minRequests: 20 });
  });

  it('lists every problem of bad options at once', () => {
    let error: unknown;
    try {
      alarmDefinitions({
        timeScale: 0,
        overrides: { latancy: { threshold: 1 }, latency: { datapointsToAlarm: 9 } },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidAlarmOptionsError);
    const message = (error as Error).message;
    expect(message).toMatch(/timeScale must be a positive number/);
    expect(message).toMatch(/no alarm rule named "latancy"; the rules are model-errors, latency/);
    expect(message).toMatch(/rule "latency": datapointsToAlarm must be an integer from 1 to/);
  });
});

describe('evaluate', () => {
  it('alarms when 3 of the last 5 periods breach', () => {
    const result = evaluate(
      errors,
      periods([40, 0.2], [40, 0], [40, 0.1], [40, 0], [40, 0.5]),
      END,
    );
    expect(result.state).toBe('ALARM');
    expect(result.breaching).toBe(3);
    expect(result.reason).toMatch(
      /^3 of the last 5 periods of 60 s had Average ModelErrors above 5\.0 %/,
    );
  });

  it('stays OK with 2 breaching periods', () => {
    const result = evaluate(errors, periods([40, 0.2], [40, 0], [40, 0], [40, 0], [40, 0.5]), END);
    expect(result).toMatchObject({ state: 'OK', breaching: 2 });
  });

  it('never counts a period with fewer requests than the minimum', () => {
    // two failures out of three requests at 3 a.m.: a 67 % error rate that pages no one
    const result = evaluate(
      errors,
      periods([3, 0.67], [3, 0.67], [3, 0.67], [3, 0.67], [3, 0.67]),
      END,
    );
    expect(result).toMatchObject({ state: 'OK', breaching: 0 });
  });

  it('treats a rate exactly at the threshold as healthy (1 failure in 20)', () => {
    const result = evaluate(errors, periods([20, 0.05], [20, 0.05], [20, 0.05], [20, 0.1]), END);
    expect(result).toMatchObject({ state: 'OK', breaching: 1 });
  });

  it('counts periods without data as not breaching', () => {
    const result = evaluate(latency, periods([30, 2500], [0, undefined], [30, 2600]), END);
    expect(result).toMatchObject({ state: 'OK', breaching: 2 });
  });

  it('looks only at the periods of its window, in any order', () => {
    const old: Datapoint = { start: END - 10 * MINUTE, requests: 100, value: 1 };
    const partial: Datapoint = { start: END, requests: 100, value: 1 };
    const inside = periods([100, 1], [100, 1]).reverse();
    const result = evaluate(errors, [old, partial, ...inside], END);
    expect(result.datapoints.map((p) => p.start)).toEqual([END - 2 * MINUTE, END - MINUTE]);
    expect(result.state).toBe('OK');
  });

  it('uses the window that ends at the last complete period', () => {
    const now = END + 42_000;
    expect(evaluationWindow(errors, now)).toEqual({ start: END - 5 * MINUTE, end: END });
  });
});

describe('statisticOf', () => {
  it('averages 0/1 error samples into a rate', () => {
    expect(statisticOf('Average', [0, 1, 0, 0])).toBe(0.25);
  });

  it('takes the nearest-rank p99', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(statisticOf('p99', hundred)).toBe(99);
    const twenty = Array.from({ length: 20 }, (_, i) => i);
    expect(statisticOf('p99', twenty)).toBe(19);
  });

  it('has no value without samples', () => {
    expect(statisticOf('p99', [])).toBeUndefined();
    expect(statisticOf('Average', [])).toBeUndefined();
  });
});
