import { describe, expect, it } from 'vitest';
import {
  type AlarmDefinition,
  alarmDefinitions,
  type Baseline,
  type Datapoint,
  DEFAULT_ALARM_DEFINITIONS,
  evaluateTrigger,
  evaluationWindow,
  InvalidAlarmOptionsError,
  judge,
  type PeriodFigures,
  statisticOf,
  zScore,
} from '../../src/guard/index.ts';
import { mulberry32 } from '../../src/util/index.ts';

const rule = (name: string): AlarmDefinition => {
  const def = DEFAULT_ALARM_DEFINITIONS.find((d) => d.name === name);
  if (def === undefined) throw new Error(`no rule ${name}`);
  return def;
};
const errors = rule('model-errors');
const latency = rule('latency');
const slow = rule('slow');

const MINUTE = 60_000;
const END = 1_700_000_040_000 - (1_700_000_040_000 % MINUTE);
/** every period settled: unfinished requests count */
const SETTLED = { end: END, settledBefore: END };

/** Five one-minute periods before END with the same figures. */
const periods = (figures: Partial<PeriodFigures>, count = 5): PeriodFigures[] =>
  Array.from({ length: count }, (_, i) => ({
    start: END - (count - i) * MINUTE,
    started: 0,
    completed: 0,
    errors: 0,
    shadowChecks: 0,
    shadowRegressions: 0,
    ...figures,
  }));

const none: Baseline = { kind: 'none' };
const production = (figures: Partial<PeriodFigures>): Baseline => ({
  kind: 'production',
  version: 1,
  periods: periods(figures),
});

describe('the default rules', () => {
  it('judge failures, tail latency and slowness per routed model version', () => {
    expect(DEFAULT_ALARM_DEFINITIONS.map((d) => d.name)).toEqual([
      'model-errors',
      'latency',
      'slow',
    ]);
    expect(errors).toMatchObject({
      threshold: 0.05,
      minRequests: 20,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      baseline: { margin: 0.05, z: 3 },
    });
    expect(latency).toMatchObject({ threshold: 2000, minRequests: 20, baseline: { factor: 2 } });
    expect(slow).toMatchObject({
      threshold: 2000,
      minRequests: 3,
      baseline: { factor: 10, floorMs: 50 },
    });
  });

  it('carry one Metrics Insights trigger each, grouped by model and version', () => {
    expect(errors.query).toBe(
      'SELECT AVG(ModelErrors) FROM SCHEMA("Maas", Model, Version) GROUP BY Model, Version ORDER BY AVG() DESC LIMIT 500',
    );
    expect(latency.query).toContain('SELECT MAX(Latency)');
    expect(slow.query).toContain('SELECT AVG(Latency)');
  });
});

describe('alarmDefinitions', () => {
  it('scales every period for the local stack and leaves the rest alone', () => {
    const scaled = alarmDefinitions({ timeScale: 1 / 60 });
    expect(scaled.map((d) => d.periodSeconds)).toEqual([1, 1, 1]);
    expect(scaled.map((d) => d.threshold)).toEqual([0.05, 2000, 2000]);
  });

  it('applies overrides by rule name, moving the trigger with the threshold', () => {
    const [e, l] = alarmDefinitions({
      overrides: { latency: { threshold: 800 }, 'model-errors': { minRequests: 5 } },
    });
    expect(e).toMatchObject({ threshold: 0.05, minRequests: 5 });
    expect(l).toMatchObject({ threshold: 800, triggerThreshold: 800, minRequests: 20 });
  });

  it('lists every problem of bad options at once', () => {
    expect(() =>
      alarmDefinitions({
        timeScale: 0,
        overrides: { latancy: { threshold: 1 }, latency: { datapointsToAlarm: 9 } },
      }),
    ).toThrow(InvalidAlarmOptionsError);
  });
});

describe('judge: errors', () => {
  it('rolls back a first version failing more than 5 % on its own', () => {
    const result = judge(errors, periods({ started: 40, completed: 40, errors: 8 }), none, SETTLED);
    expect(result).toMatchObject({ state: 'ALARM', breaching: 5 });
  });

  it('never counts a period with fewer requests than the minimum', () => {
    const result = judge(errors, periods({ started: 3, completed: 3, errors: 2 }), none, SETTLED);
    expect(result).toMatchObject({ state: 'OK', breaching: 0 });
  });

  it('does not blame a candidate for inputs that fail on production too', () => {
    // an attacker's failing inputs reach both routes alike: 50 % everywhere
    const result = judge(
      errors,
      periods({ started: 30, completed: 30, errors: 15 }),
      production({ started: 270, completed: 270, errors: 135 }),
      SETTLED,
    );
    expect(result).toMatchObject({ state: 'OK', breaching: 0 });
  });

  it('rolls back a candidate that fails where production answers', () => {
    const result = judge(
      errors,
      periods({ started: 30, completed: 30, errors: 20 }),
      production({ started: 270, completed: 270, errors: 3 }),
      SETTLED,
    );
    expect(result.state).toBe('ALARM');
    expect(result.reason).toMatch(/against production v1 \[66\.7 % over 30 requests vs 1\.1 %/);
  });

  it('almost never breaches by chance when candidate and production fail alike', () => {
    const random = mulberry32(42);
    const binomial = (n: number, p: number): number => {
      let k = 0;
      for (let i = 0; i < n; i++) if (random() < p) k++;
      return k;
    };
    let alarms = 0;
    for (let run = 0; run < 2000; run++) {
      const own = periods({}).map((p) => ({
        ...p,
        started: 20,
        completed: 20,
        errors: binomial(20, 0.5),
      }));
      const base: Baseline = {
        kind: 'production',
        version: 1,
        periods: periods({}).map((p) => ({
          ...p,
          started: 180,
          completed: 180,
          errors: binomial(180, 0.5),
        })),
      };
      if (judge(errors, own, base, SETTLED).state === 'ALARM') alarms++;
    }
    expect(alarms).toBe(0);
  });

  it('counts requests that started and never finished as failures once settled', () => {
    const hanging = periods({ started: 25, completed: 0 });
    expect(judge(errors, hanging, none, SETTLED)).toMatchObject({ state: 'ALARM' });
    // the same periods before they settle: the requests may still answer
    expect(
      judge(errors, hanging, none, { end: END, settledBefore: END - 10 * MINUTE }),
    ).toMatchObject({
      state: 'OK',
    });
  });

  it('counts only the failures the previous version answers for production in its watch window', () => {
    const shadow: Baseline = { kind: 'shadow', version: 1 };
    // half the requests fail, and the shadow finds every one failing on v1 too
    const attacked = periods({
      started: 40,
      completed: 40,
      errors: 20,
      shadowChecks: 4,
      shadowRegressions: 0,
    });
    expect(judge(errors, attacked, shadow, SETTLED).state).toBe('OK');
    // the shadow finds v1 answering them: a regression
    const regressed = periods({
      started: 40,
      completed: 40,
      errors: 20,
      shadowChecks: 4,
      shadowRegressions: 4,
    });
    expect(judge(errors, regressed, shadow, SETTLED).state).toBe('ALARM');
  });
});

describe('judge: production in its watch window', () => {
  it('judges only the periods since its promotion (before, it was a candidate)', () => {
    // failing half its requests as a candidate, with no shadow then: not production's record
    const asCandidate = periods({ started: 40, completed: 40, errors: 20 });
    const since = END - 2 * MINUTE;
    const result = judge(errors, asCandidate, { kind: 'shadow', version: 1, since }, SETTLED);
    expect(result.periods.map((p) => p.start)).toEqual([END - 2 * MINUTE, END - MINUTE]);
    expect(result.state).toBe('OK');
  });

  it('applies the window’s regression share to periods the shadow budget skipped', () => {
    const figures = periods({ started: 40, completed: 40, errors: 20 });
    const [first] = figures;
    if (first !== undefined) Object.assign(first, { shadowChecks: 5, shadowRegressions: 0 });
    expect(judge(errors, figures, { kind: 'shadow', version: 1 }, SETTLED).state).toBe('OK');
    if (first !== undefined) first.shadowRegressions = 5;
    expect(judge(errors, figures, { kind: 'shadow', version: 1 }, SETTLED).state).toBe('ALARM');
  });
});

describe('judge: latency and slowness', () => {
  it('rolls back on p99 above 2 s only when also twice production', () => {
    const own = periods({ started: 30, completed: 30, p50: 900, p99: 2600 });
    expect(
      judge(latency, own, production({ started: 300, completed: 300, p99: 2400 }), SETTLED).state,
    ).toBe('OK');
    expect(
      judge(latency, own, production({ started: 300, completed: 300, p99: 300 }), SETTLED).state,
    ).toBe('ALARM');
    expect(judge(latency, own, none, SETTLED).state).toBe('ALARM');
  });

  it('rolls back a version 10 times slower than production on a few started requests', () => {
    const own = periods({ started: 4, completed: 4, p50: 600, p99: 900 });
    const base = production({ started: 200, completed: 200, p50: 5, p99: 12 });
    expect(judge(slow, own, base, SETTLED)).toMatchObject({ state: 'ALARM', breaching: 5 });
    expect(judge(errors, own, base, SETTLED).state).toBe('OK');
    expect(judge(latency, own, base, SETTLED).state).toBe('OK');
  });

  it('counts a version whose requests mostly never finish as infinitely slow', () => {
    const own = periods({ started: 4, completed: 1, p50: 3 });
    const result = judge(slow, own, production({ started: 200, completed: 200, p50: 5 }), SETTLED);
    expect(result.state).toBe('ALARM');
    expect(result.reason).toMatch(/unfinished over 4 requests/);
  });

  it('rolls back a hanging version that starts too few requests for any one period (found by attack)', () => {
    // two instances held by requests that never answer: one start per period, none answered
    const own = periods({ started: 1, completed: 0 });
    const base = production({ started: 200, completed: 200, p50: 5 });
    const result = judge(slow, own, base, SETTLED);
    expect(result.breaching).toBe(0);
    expect(result.state).toBe('ALARM');
    expect(result.reason).toMatch(/over the whole window unfinished on 5 started requests/);
    // and one that answers, but in seconds, two requests a period
    const sluggish = periods({ started: 2, completed: 2, p50: 8000 });
    expect(judge(slow, sluggish, base, SETTLED).state).toBe('ALARM');
    // a healthy version as quiet as that stays OK
    const quiet = periods({ started: 2, completed: 2, p50: 6 });
    expect(judge(slow, quiet, base, SETTLED).state).toBe('OK');
  });

  it('leaves a tiny model alone below the floor, and slow inputs that are slow everywhere', () => {
    const tiny = periods({ started: 10, completed: 10, p50: 2 });
    expect(
      judge(slow, tiny, production({ started: 90, completed: 90, p50: 0.1 }), SETTLED).state,
    ).toBe('OK');
    const both = periods({ started: 10, completed: 10, p50: 900 });
    expect(
      judge(slow, both, production({ started: 90, completed: 90, p50: 850 }), SETTLED).state,
    ).toBe('OK');
  });
});

describe('evaluateTrigger', () => {
  const points = (...values: (number | undefined)[]): Datapoint[] =>
    values.map((value, i) => ({
      start: END - (values.length - i) * MINUTE,
      requests: 1,
      ...(value === undefined ? {} : { value }),
    }));

  it('fires as the Metrics Insights alarm does: 3 of 5 periods above the trigger, any traffic', () => {
    expect(evaluateTrigger(errors, points(0.2, 0, 0.1, undefined, 0.5), END)).toMatchObject({
      state: 'ALARM',
      breaching: 3,
    });
    expect(evaluateTrigger(errors, points(0.2, 0, 0, 0, 0.5), END).state).toBe('OK');
  });

  it('uses the window that ends at the last complete period', () => {
    expect(evaluationWindow(errors, END + 42_000)).toEqual({ start: END - 5 * MINUTE, end: END });
  });
});

describe('statistics', () => {
  it('averages, and takes nearest-rank percentiles', () => {
    expect(statisticOf('Average', [0, 1, 0, 0])).toBe(0.25);
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(statisticOf('p99', hundred)).toBe(99);
    expect(statisticOf('p50', hundred)).toBe(50);
    expect(statisticOf('p99', [])).toBeUndefined();
  });

  it('scores how far one failure rate is above another', () => {
    expect(zScore(0.5, 20, 0.5, 180)).toBe(0);
    expect(zScore(0.1, 20, 0, 180)).toBeGreaterThan(3);
    expect(zScore(0.2, 0, 0, 180)).toBe(0);
  });
});
