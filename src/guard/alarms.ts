import { METRICS_NAMESPACE } from '../metrics/index.ts';
import { InvalidAlarmOptionsError } from './errors.ts';

/**
 * The guard's health rules, in one place: the CDK stack turns each into a CloudWatch alarm, the
 * rollback and promote functions confirm them against CloudWatch's numbers, and the local stack's
 * evaluator applies them to the handlers' EMF lines.
 *
 * A rule watches one time series per model version (dimensions `Model` + `Version`). A period is a
 * *breaching datapoint* when at least `minRequests` requests reached that version in the period
 * and the statistic of the metric is above `threshold`; the version is in ALARM when
 * `datapointsToAlarm` of the last `evaluationPeriods` periods breach. Periods without traffic do
 * not breach (no traffic is not a failure).
 *
 * CloudWatch's side: one Metrics Insights alarm per rule, `GROUP BY Model, Version`, so a model
 * uploaded after `cdk deploy` is covered the moment it emits metrics, each version being a
 * contributor whose ALARM invokes rollback. Metrics Insights has only AVG, COUNT, MAX, MIN and SUM,
 * and one query cannot also count requests, so the alarm is a trigger that fires whenever the rule
 * may be breached (`statistic`): the functions then fetch the exact statistic (`exactStatistic`,
 * p99 included) and the request counts per period with GetMetricData and act only when the rule
 * holds. For error rates the trigger is already exact (AVG of a 0/1 metric is the rate); for
 * latency MAX > T is implied by p99 > T.
 */

/** CloudWatch statistic names the guard judges by (GetMetricData `Stat`). */
export type GuardStatistic = 'Average' | 'p99';

/** Metrics Insights functions (the only statistics of a `GROUP BY` alarm). */
export type InsightsFunction = 'AVG' | 'MAX';

export interface AlarmDefinition {
  /** stable id: the CloudWatch alarm is `<stack>-guard-<name>` */
  readonly name: string;
  readonly description: string;
  /** a metric of the `Maas` namespace emitted per request under `Model` + `Version` */
  readonly metricName: 'ModelErrors' | 'Latency';
  /** the Metrics Insights function of the cloud alarm: breaches whenever `exactStatistic` may */
  readonly statistic: InsightsFunction;
  /** what a breach means, per version and period (confirmed with GetMetricData) */
  readonly exactStatistic: GuardStatistic;
  readonly comparison: 'GreaterThanThreshold';
  readonly threshold: number;
  /** seconds per datapoint (fractional only in the local stack's scaled time) */
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  /** a period with fewer requests to the version never breaches */
  readonly minRequests: number;
  /** the Metrics Insights query of the cloud alarm: one contributor per model version */
  readonly query: string;
}

/** The dimensions every guard series is grouped by. */
export const GUARD_DIMENSIONS = ['Model', 'Version'] as const;

export const insightsQuery = (fn: InsightsFunction, metricName: string): string =>
  `SELECT ${fn}(${metricName}) FROM SCHEMA("${METRICS_NAMESPACE}", ${GUARD_DIMENSIONS.join(', ')}) ` +
  `GROUP BY ${GUARD_DIMENSIONS.join(', ')} ORDER BY ${fn}() DESC LIMIT 500`;

/**
 * Defaults a careful operator would pick:
 * - 1-minute periods, ALARM on 3 breaching of the last 5: a bad version is caught within 3 to 5
 *   minutes, while one bad minute (a cold start, a burst of odd inputs) pages no one.
 * - at least 20 requests to the version in a period for it to count: two failures at 3 a.m. are
 *   not a 100 % error rate. A version needs ≥ 20 requests a minute (≥ 200/min overall for a 10 %
 *   canary) to be judged at all; quieter models are promoted on bake time alone and watched by
 *   whoever owns them.
 * - errors: more than 5 % of requests failing server-side (ModelErrors is 0 or 1 per request,
 *   so its Average is the error rate); 1 in 20 does not breach, 2 in 20 does.
 * - latency: p99 end-to-end latency above 2 s, far beyond a healthy model's tens of ms, yet below
 *   API Gateway's 29 s limit where requests start failing outright.
 */
export const DEFAULT_ALARM_DEFINITIONS: readonly AlarmDefinition[] = [
  {
    name: 'model-errors',
    description:
      'More than 5 % of one model version’s requests failed server-side in 3 of 5 one-minute periods (with at least 20 requests each)',
    metricName: 'ModelErrors',
    statistic: 'AVG',
    exactStatistic: 'Average',
    comparison: 'GreaterThanThreshold',
    threshold: 0.05,
    periodSeconds: 60,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    minRequests: 20,
    query: insightsQuery('AVG', 'ModelErrors'),
  },
  {
    name: 'latency',
    description:
      'p99 latency of one model version above 2000 ms in 3 of 5 one-minute periods (with at least 20 requests each)',
    metricName: 'Latency',
    statistic: 'MAX',
    exactStatistic: 'p99',
    comparison: 'GreaterThanThreshold',
    threshold: 2000,
    periodSeconds: 60,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    minRequests: 20,
    query: insightsQuery('MAX', 'Latency'),
  },
];

export type AlarmOverride = Partial<
  Pick<
    AlarmDefinition,
    'threshold' | 'minRequests' | 'evaluationPeriods' | 'datapointsToAlarm' | 'periodSeconds'
  >
>;

export interface AlarmOptions {
  /**
   * Multiplies every period: 1 in the cloud; the local stack uses e.g. 1/60 so a minute of
   * CloudWatch time passes in a second. @default 1
   */
  timeScale?: number;
  /** per rule name, e.g. `{ latency: { threshold: 800 } }` (the CDK context's threshold overrides) */
  overrides?: Readonly<Record<string, AlarmOverride>>;
}

const positiveInteger = (value: number): boolean => Number.isSafeInteger(value) && value >= 1;

/** The rules with overrides and time scale applied; InvalidAlarmOptionsError lists every problem. */
export function alarmDefinitions(options: AlarmOptions = {}): AlarmDefinition[] {
  const scale = options.timeScale ?? 1;
  const overrides = options.overrides ?? {};
  const problems: string[] = [];
  if (!Number.isFinite(scale) || scale <= 0) {
    problems.push(`timeScale must be a positive number, got ${scale}`);
  }
  const names = DEFAULT_ALARM_DEFINITIONS.map((def) => def.name);
  for (const name of Object.keys(overrides)) {
    if (!names.includes(name)) {
      problems.push(`no alarm rule named "${name}"; the rules are ${names.join(', ')}`);
    }
  }
  const resolved = DEFAULT_ALARM_DEFINITIONS.map((def) => {
    const next = { ...def, ...overrides[def.name] };
    const at = `rule "${def.name}"`;
    if (!Number.isFinite(next.threshold)) problems.push(`${at}: threshold must be a number`);
    if (!Number.isSafeInteger(next.minRequests) || next.minRequests < 0) {
      problems.push(`${at}: minRequests must be an integer ≥ 0`);
    }
    if (!positiveInteger(next.evaluationPeriods)) {
      problems.push(`${at}: evaluationPeriods must be an integer ≥ 1`);
    }
    if (
      !positiveInteger(next.datapointsToAlarm) ||
      next.datapointsToAlarm > next.evaluationPeriods
    ) {
      problems.push(`${at}: datapointsToAlarm must be an integer from 1 to evaluationPeriods`);
    }
    if (!Number.isFinite(next.periodSeconds) || next.periodSeconds <= 0) {
      problems.push(`${at}: periodSeconds must be a positive number`);
    }
    return { ...next, periodSeconds: next.periodSeconds * scale };
  });
  if (problems.length > 0) throw new InvalidAlarmOptionsError(problems);
  return resolved;
}

/** One period of one version's series. */
export interface Datapoint {
  /** epoch ms at which the period starts */
  start: number;
  /** requests that reached the version in the period */
  requests: number;
  /** the rule's statistic over the period; undefined without data */
  value?: number;
}

export interface Evaluation {
  rule: string;
  state: 'OK' | 'ALARM';
  /** breaching periods among the last `evaluationPeriods` */
  breaching: number;
  /** the periods evaluated, oldest first */
  datapoints: Datapoint[];
  /** CloudWatch-like explanation, e.g. for the history record */
  reason: string;
}

export const periodMs = (def: AlarmDefinition): number => def.periodSeconds * 1000;

export const isBreaching = (def: AlarmDefinition, point: Datapoint): boolean =>
  point.value !== undefined && point.requests >= def.minRequests && point.value > def.threshold;

const formatValue = (def: AlarmDefinition, value: number): string =>
  def.metricName === 'Latency' ? `${value.toFixed(0)} ms` : `${(value * 100).toFixed(1)} %`;

/**
 * Applies a rule to a version's datapoints (any order; periods missing from the list count as
 * without data). Only the last `evaluationPeriods` periods ending at `end` are considered.
 */
export function evaluate(
  def: AlarmDefinition,
  points: readonly Datapoint[],
  end: number,
): Evaluation {
  const length = periodMs(def);
  const first = end - def.evaluationPeriods * length;
  const window = points
    .filter((p) => p.start >= first && p.start + length <= end)
    .sort((a, b) => a.start - b.start);
  const breaching = window.filter((p) => isBreaching(def, p));
  const state = breaching.length >= def.datapointsToAlarm ? 'ALARM' : 'OK';
  const what = `${def.exactStatistic} ${def.metricName}`;
  const shown = breaching
    .map((p) => `${formatValue(def, p.value ?? 0)} over ${p.requests} requests`)
    .join(', ');
  const reason =
    `${breaching.length} of the last ${def.evaluationPeriods} periods of ${def.periodSeconds} s ` +
    `had ${what} above ${formatValue(def, def.threshold)} with at least ${def.minRequests} requests` +
    (shown === '' ? '' : ` [${shown}]`) +
    ` (ALARM at ${def.datapointsToAlarm})`;
  return { rule: def.name, state, breaching: breaching.length, datapoints: window, reason };
}

/** The rule's statistic over one period's samples: their mean, or their nearest-rank p99. */
export function statisticOf(
  statistic: GuardStatistic,
  samples: readonly number[],
): number | undefined {
  if (samples.length === 0) return undefined;
  if (statistic === 'Average') return samples.reduce((sum, v) => sum + v, 0) / samples.length;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.ceil(0.99 * sorted.length) - 1];
}
