import { METRICS_NAMESPACE } from '../metrics/index.ts';
import { InvalidAlarmOptionsError } from './errors.ts';

/**
 * The guard's rules, in one place (docs/guard.md explains them with their figures and costs): the
 * CDK stack turns each into a CloudWatch alarm, the rollback and promote functions judge them on
 * CloudWatch's exact figures, and the local stack's evaluator does both on the handlers' EMF lines.
 *
 * What a rule reads: the series `Model` + `Version` of the `Maas` namespace, which predict emits
 * only for *routed* requests (production or candidate by the aliases); requests pinned by version
 * (`/versions/{v}/infer`) appear only under `Model` + `Variant=pinned`, so no client can dilute or
 * forge a rollout decision by pinning. Per request predict writes `Started` before the model runs
 * and `Requests`, `ModelErrors`, `Latency` (model load excluded) once it answered, both stamped
 * with the request's start, so `Started - Requests` of a period counts the requests that never
 * finished (time-out, crash, out of memory): they count as failures, and as infinitely slow.
 *
 * How a version is judged (`judge`): per period, against a *baseline* on the same periods —
 * - a candidate against production's routed traffic: it breaches only where it does clearly worse
 *   than production (inputs that fail everywhere fail on both routes alike);
 * - production within its watch window against its previous known-good version: each request that
 *   fails on it is re-run on that version (a bounded shadow), and only failures the old version
 *   answers count (`ShadowRegressions / ShadowChecks` of the failures);
 * - without a baseline (a first version, or a period production had no traffic) the absolute rules.
 * A version is in ALARM when `datapointsToAlarm` of its last `evaluationPeriods` complete periods
 * breach. Periods younger than `settleMs` count no unfinished request yet (it may still answer).
 *
 * The cloud alarm of each rule is only a trigger: a Metrics Insights query (`GROUP BY Model,
 * Version`, so versions uploaded after the deploy are covered) on a statistic that goes above
 * `triggerThreshold` whenever the rule may breach. CloudWatch acts on state changes only, so the
 * promote schedule re-judges every candidate and every production version in its watch window on
 * every run, whatever the alarms did.
 */

/** CloudWatch statistic names the triggers are evaluated with (GetMetricData `Stat`). */
export type GuardStatistic = 'Average' | 'p50' | 'p99';

/** Metrics Insights functions (the only statistics of a `GROUP BY` alarm). */
export type InsightsFunction = 'AVG' | 'MAX';

/** What a rule judges: failure rate, tail latency, or a version much slower than its baseline. */
export type RuleKind = 'errors' | 'latency' | 'slow';

export interface AlarmDefinition {
  /** stable id: the CloudWatch alarm is `<stack>-guard-<name>` */
  readonly name: string;
  readonly kind: RuleKind;
  readonly description: string;
  /** the metric of the cloud alarm's trigger query, emitted per routed request */
  readonly metricName: 'ModelErrors' | 'Latency';
  /** the Metrics Insights function of the cloud alarm's trigger */
  readonly statistic: InsightsFunction;
  /** the same trigger as GetMetricData computes it (the local evaluator's statistic) */
  readonly exactStatistic: GuardStatistic;
  readonly comparison: 'GreaterThanThreshold';
  /**
   * errors: failure rate (0–1) a version must exceed; latency: p99 ms; slow: p50 ms above which a
   * version without a baseline breaches
   */
  readonly threshold: number;
  /** the cloud alarm fires when the trigger statistic is above this (it may breach the rule) */
  readonly triggerThreshold: number;
  /** seconds per datapoint (fractional only in the local stack's scaled time) */
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  /**
   * a period counts only with at least this many requests of the version: completed ones for
   * errors and latency, *started* ones for slow
   */
  readonly minRequests: number;
  /**
   * against a baseline: errors breach when the rate is also `margin` above the baseline's with a
   * two-proportion z-score ≥ `z`; latency and slow when the statistic is ≥ `factor` × the
   * baseline's (slow: and ≥ `floorMs`, so microseconds of noise on a tiny model never breach)
   */
  readonly baseline: {
    readonly factor?: number;
    readonly margin?: number;
    readonly z?: number;
    readonly floorMs?: number;
  };
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
 * - errors: more than 5 % of ≥ 20 routed requests failing or never finishing; against production,
 *   also 5 points above production's rate with z ≥ 3 (a chance breach in one period is about 1 in
 *   700, three in five periods about 1 in 30 million).
 * - latency: p99 above 2 s over ≥ 20 requests (model load excluded) and, against production, at
 *   least twice production's p99.
 * - slow: once ≥ 3 requests *started* in a period, a median (unfinished requests count as
 *   infinitely slow) ≥ 10× production's and ≥ 50 ms; without a baseline, a median above 2 s. A
 *   version slow enough to starve its traffic never reaches 20 requests a minute.
 */
export const DEFAULT_ALARM_DEFINITIONS: readonly AlarmDefinition[] = [
  {
    name: 'model-errors',
    kind: 'errors',
    description:
      'A model version failed (or never finished) more than 5 % of its routed requests, and clearly more than its baseline, in 3 of 5 one-minute periods with at least 20 requests each',
    metricName: 'ModelErrors',
    statistic: 'AVG',
    exactStatistic: 'Average',
    comparison: 'GreaterThanThreshold',
    threshold: 0.05,
    triggerThreshold: 0.05,
    periodSeconds: 60,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    minRequests: 20,
    baseline: { margin: 0.05, z: 3 },
    query: insightsQuery('AVG', 'ModelErrors'),
  },
  {
    name: 'latency',
    kind: 'latency',
    description:
      'p99 latency (model load excluded) of a model version above 2000 ms and at least twice its baseline’s in 3 of 5 one-minute periods with at least 20 requests each',
    metricName: 'Latency',
    statistic: 'MAX',
    exactStatistic: 'p99',
    comparison: 'GreaterThanThreshold',
    threshold: 2000,
    triggerThreshold: 2000,
    periodSeconds: 60,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    minRequests: 20,
    baseline: { factor: 2 },
    query: insightsQuery('MAX', 'Latency'),
  },
  {
    name: 'slow',
    kind: 'slow',
    description:
      'Median latency of a model version (unfinished requests counted as infinitely slow) at least 10 times its baseline’s (or above 2000 ms without one) in 3 of 5 one-minute periods with at least 3 started requests each',
    metricName: 'Latency',
    statistic: 'AVG',
    exactStatistic: 'Average',
    comparison: 'GreaterThanThreshold',
    threshold: 2000,
    triggerThreshold: 50,
    periodSeconds: 60,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    minRequests: 3,
    baseline: { factor: 10, floorMs: 50 },
    query: insightsQuery('AVG', 'Latency'),
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
    // The error and latency triggers fire exactly where their rule's threshold lies.
    if (def.kind !== 'slow') next.triggerThreshold = next.threshold;
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

/** One period of one trigger series, as a CloudWatch alarm sees it. */
export interface Datapoint {
  /** epoch ms at which the period starts */
  start: number;
  /** requests that reached the version in the period */
  requests: number;
  /** the trigger's statistic over the period; undefined without data */
  value?: number;
}

export const periodMs = (def: Pick<AlarmDefinition, 'periodSeconds'>): number =>
  def.periodSeconds * 1000;

/** What the cloud alarm does (Metrics Insights cannot count requests): value above the trigger. */
export const isTriggering = (def: AlarmDefinition, point: Datapoint): boolean =>
  point.value !== undefined && point.value > def.triggerThreshold;

export interface TriggerEvaluation {
  rule: string;
  state: 'OK' | 'ALARM';
  breaching: number;
  reason: string;
}

/**
 * The cloud alarm's state for one contributor: `datapointsToAlarm` of the last
 * `evaluationPeriods` periods ending at `end` above `triggerThreshold`. Only a trigger: rollback
 * then judges the rule itself.
 */
export function evaluateTrigger(
  def: AlarmDefinition,
  points: readonly Datapoint[],
  end: number,
): TriggerEvaluation {
  const length = periodMs(def);
  const first = end - def.evaluationPeriods * length;
  const breaching = points.filter(
    (p) => p.start >= first && p.start + length <= end && isTriggering(def, p),
  ).length;
  return {
    rule: def.name,
    state: breaching >= def.datapointsToAlarm ? 'ALARM' : 'OK',
    breaching,
    reason: `${breaching} of the last ${def.evaluationPeriods} periods had ${def.statistic}(${def.metricName}) above ${def.triggerThreshold}`,
  };
}

/** One period of one version's routed traffic: what the rules judge. */
export interface PeriodFigures {
  /** epoch ms at which the period starts */
  start: number;
  /** `Started`: requests that began (before the model ran) */
  started: number;
  /** `Requests`: requests that answered, whatever the answer */
  completed: number;
  /** `ModelErrors`: answered requests the model failed */
  errors: number;
  /** p50 and p99 of `Latency` (model load excluded) over the answered requests */
  p50?: number;
  p99?: number;
  /** `ShadowChecks`: failures re-run on the previous known-good version */
  shadowChecks: number;
  /** `ShadowRegressions`: of those, the ones the previous version answered */
  shadowRegressions: number;
}

/** What a version is compared with. */
export type Baseline =
  /** a first version, or production outside a watch window: the absolute rules */
  | { kind: 'none' }
  /** a candidate: production's routed figures over the same periods */
  | { kind: 'production'; version: number; periods: readonly PeriodFigures[] }
  /**
   * production in its watch window: its failures re-run on the previous known-good version; only
   * periods from `since` (its promotion) on are its own as production
   */
  | { kind: 'shadow'; version: number; since?: number };

/** A period as a rule saw it, for the history record and `maas show`. */
export interface JudgedPeriod {
  start: number;
  /** requests counted: started, or answered where unfinished ones may still answer */
  requests: number;
  unfinished: number;
  /** the figure compared: failure rate, p99 or median in ms (Infinity: mostly unfinished) */
  value?: number;
  /** the baseline's same figure in that period, when there was one */
  baseline?: number;
  breaching: boolean;
}

export interface Evaluation {
  rule: string;
  state: 'OK' | 'ALARM';
  /** breaching periods among the last `evaluationPeriods` */
  breaching: number;
  /** the periods judged, oldest first */
  periods: JudgedPeriod[];
  /** why, in words, for the history record */
  reason: string;
}

interface Counted {
  requests: number;
  unfinished: number;
  failures: number;
}

/**
 * The requests of a period: started ones once the period has settled (an unfinished one will not
 * answer any more), else only answered ones. Failures of production in its watch window count
 * only in the share its previous version answered (`regressionShare`: `ShadowRegressions /
 * ShadowChecks` over the window, since the shadow's budget may skip a period).
 */
const counted = (p: PeriodFigures, settled: boolean, regressionShare?: number): Counted => {
  const unfinished = settled ? Math.max(0, p.started - p.completed) : 0;
  const errors = regressionShare === undefined ? p.errors : p.errors * regressionShare;
  return {
    requests: p.completed + unfinished,
    unfinished,
    failures: errors + unfinished,
  };
};

/** Median over started requests, unfinished ones counted as infinitely slow. */
const medianOf = (p: PeriodFigures, c: Counted): number | undefined =>
  c.requests === 0 ? undefined : 2 * c.unfinished >= c.requests ? Infinity : p.p50;

/** One-sided two-proportion z-score of rate a (of n) above rate b (of m), pooled. */
export const zScore = (a: number, n: number, b: number, m: number): number => {
  if (n === 0 || m === 0) return 0;
  const pooled = (a * n + b * m) / (n + m);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m));
  if (se === 0) return a > b ? Infinity : 0;
  return (a - b) / se;
};

const judgePeriod = (
  def: AlarmDefinition,
  own: PeriodFigures,
  base: PeriodFigures | undefined,
  settled: boolean,
  regressionShare: number | undefined,
): JudgedPeriod => {
  const c = counted(own, settled, regressionShare);
  const b = base === undefined ? undefined : counted(base, settled);
  const out = (value: number | undefined, baseline: number | undefined, breaching: boolean) => ({
    start: own.start,
    requests: c.requests,
    unfinished: c.unfinished,
    ...(value === undefined ? {} : { value }),
    ...(baseline === undefined ? {} : { baseline }),
    breaching,
  });
  if (def.kind === 'errors') {
    if (c.requests === 0) return out(undefined, undefined, false);
    const rate = c.failures / c.requests;
    const enough = c.requests >= def.minRequests;
    if (b === undefined || b.requests === 0) {
      return out(rate, undefined, enough && rate > def.threshold);
    }
    const baseRate = b.failures / b.requests;
    const worse =
      rate > def.threshold &&
      rate - baseRate > (def.baseline.margin ?? 0) &&
      zScore(rate, c.requests, baseRate, b.requests) >= (def.baseline.z ?? 0);
    return out(rate, baseRate, enough && worse);
  }
  if (def.kind === 'latency') {
    const enough = own.completed >= def.minRequests && own.p99 !== undefined;
    const value = own.p99;
    const baseP99 = base?.p99;
    const breach =
      enough &&
      value !== undefined &&
      value > def.threshold &&
      (baseP99 === undefined || value >= (def.baseline.factor ?? 1) * baseP99);
    return out(value, baseP99, breach);
  }
  const median = medianOf(own, c);
  const baseMedian = b === undefined ? undefined : medianOf(base as PeriodFigures, b);
  const enough = c.requests >= def.minRequests && median !== undefined;
  const breach =
    enough &&
    (baseMedian === undefined
      ? median > def.threshold
      : Number.isFinite(baseMedian) &&
        median >= (def.baseline.floorMs ?? 0) &&
        median >= (def.baseline.factor ?? 1) * baseMedian);
  return out(median, baseMedian, breach);
};

const shown = (def: AlarmDefinition, value: number | undefined): string => {
  if (value === undefined) return 'no data';
  if (value === Infinity) return 'unfinished';
  return def.kind === 'errors' ? `${(value * 100).toFixed(1)} %` : `${value.toFixed(0)} ms`;
};

/** The median over several periods' requests: each period's p50 weighted by its answers. */
const pooledMedian = (periods: readonly PeriodFigures[], settledBefore: number, length: number) => {
  const weighted: [number, number][] = [];
  let requests = 0;
  for (const p of periods) {
    const c = counted(p, p.start + length <= settledBefore);
    requests += c.requests;
    if (c.unfinished > 0) weighted.push([Infinity, c.unfinished]);
    if (p.p50 !== undefined && p.completed > 0) weighted.push([p.p50, p.completed]);
  }
  weighted.sort((a, b) => a[0] - b[0]);
  let seen = 0;
  for (const [value, weight] of weighted) {
    seen += weight;
    if (2 * seen >= requests) return { requests, value };
  }
  return { requests, value: undefined };
};

/**
 * The `slow` rule over its whole window as well as per period: a version whose requests take
 * seconds or never answer starts few of them (each holds an instance until it ends), so no single
 * period may reach the minimum while the window plainly does.
 */
const judgeSlowOverall = (
  def: AlarmDefinition,
  own: readonly PeriodFigures[],
  baseAt: ReadonlyMap<number, PeriodFigures>,
  settledBefore: number,
): { breaching: boolean; requests: number; value?: number; baseline?: number } => {
  const length = periodMs(def);
  const mine = pooledMedian(own, settledBefore, length);
  const basePeriods = own.flatMap((p) => {
    const b = baseAt.get(p.start);
    return b === undefined ? [] : [b];
  });
  const base =
    basePeriods.length === 0 ? undefined : pooledMedian(basePeriods, settledBefore, length);
  const baseline = base?.requests ? base.value : undefined;
  const median = mine.value;
  const breaching =
    mine.requests >= def.minRequests &&
    median !== undefined &&
    (baseline === undefined
      ? median > def.threshold
      : Number.isFinite(baseline) &&
        median >= (def.baseline.floorMs ?? 0) &&
        median >= (def.baseline.factor ?? 1) * baseline);
  return {
    breaching,
    requests: mine.requests,
    ...(median === undefined ? {} : { value: median }),
    ...(baseline === undefined ? {} : { baseline }),
  };
};

/**
 * Judges one rule on a version's periods (any order; missing periods have no data) against its
 * baseline, over the last `evaluationPeriods` complete periods ending at `end`. Periods ending
 * after `settledBefore` count no unfinished request yet.
 */
export function judge(
  def: AlarmDefinition,
  periods: readonly PeriodFigures[],
  baseline: Baseline,
  window: { start?: number; end: number; settledBefore: number },
): Evaluation {
  const length = periodMs(def);
  const since = baseline.kind === 'shadow' ? (baseline.since ?? 0) : 0;
  const first = Math.max(window.start ?? window.end - def.evaluationPeriods * length, since);
  const baseAt = new Map(
    baseline.kind === 'production' ? baseline.periods.map((p) => [p.start, p] as const) : [],
  );
  const inWindow = periods
    .filter((p) => p.start >= first && p.start + length <= window.end)
    .sort((a, b) => a.start - b.start);
  // Without a single re-run in the window (no budget, or the previous version would not load)
  // every failure counts, as without a baseline.
  const checks = inWindow.reduce((sum, p) => sum + p.shadowChecks, 0);
  const regressionShare =
    baseline.kind === 'shadow' && checks > 0
      ? inWindow.reduce((sum, p) => sum + p.shadowRegressions, 0) / checks
      : undefined;
  const judged = inWindow.map((p) =>
    judgePeriod(
      def,
      p,
      baseAt.get(p.start),
      p.start + length <= window.settledBefore,
      regressionShare,
    ),
  );
  const breaching = judged.filter((p) => p.breaching);
  const slowOverall =
    def.kind === 'slow' ? judgeSlowOverall(def, inWindow, baseAt, window.settledBefore) : undefined;
  const state =
    breaching.length >= def.datapointsToAlarm || slowOverall?.breaching === true ? 'ALARM' : 'OK';
  const against =
    baseline.kind === 'production'
      ? ` against production v${baseline.version}`
      : baseline.kind === 'shadow'
        ? ` counting only failures v${baseline.version} answers`
        : '';
  const detail = breaching
    .map(
      (p) =>
        `${shown(def, p.value)} over ${p.requests} requests` +
        (p.baseline === undefined ? '' : ` vs ${shown(def, p.baseline)}`),
    )
    .join(', ');
  const reason =
    `${breaching.length} of the last ${def.evaluationPeriods} periods of ${def.periodSeconds} s breached ${def.name}${against}` +
    (detail === '' ? '' : ` [${detail}]`) +
    ` (ALARM at ${def.datapointsToAlarm})` +
    (slowOverall === undefined
      ? ''
      : `; over the whole window ${shown(def, slowOverall.value)} on ${slowOverall.requests} started requests` +
        (slowOverall.baseline === undefined ? '' : ` vs ${shown(def, slowOverall.baseline)}`) +
        (slowOverall.breaching ? ' (ALARM)' : ''));
  return { rule: def.name, state, breaching: breaching.length, periods: judged, reason };
}

/** A statistic over one period's samples: their mean, or a nearest-rank percentile. */
export function statisticOf(
  statistic: GuardStatistic,
  samples: readonly number[],
): number | undefined {
  if (samples.length === 0) return undefined;
  if (statistic === 'Average') return samples.reduce((sum, v) => sum + v, 0) / samples.length;
  const q = statistic === 'p50' ? 0.5 : 0.99;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}
