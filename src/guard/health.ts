import {
  type AlarmDefinition,
  type Baseline,
  type Evaluation,
  judge,
  type PeriodFigures,
  periodMs,
} from './alarms.ts';

/** Per-period figures of one version's routed traffic: CloudWatch in the cloud, EMF locally. */
export interface MetricsReader {
  /** the figures of the periods of `periodSeconds` starting in [start, end), oldest first */
  periods(
    model: string,
    version: number,
    range: { start: number; end: number },
    periodSeconds: number,
  ): Promise<PeriodFigures[]>;
}

/** Who a version is judged against (see `Baseline`), before its figures are read. */
export type BaselineRef =
  | { kind: 'none' }
  | { kind: 'production'; version: number }
  | { kind: 'shadow'; version: number; since?: number };

export interface HealthReport {
  model: string;
  version: number;
  /** ALARM when any rule is in ALARM */
  state: 'OK' | 'ALARM';
  evaluations: Evaluation[];
  baseline: BaselineRef;
  /** routed requests the version started over the rules' window: a candidate's evidence */
  started: number;
}

/** What judging needs from the guard's settings. */
export interface JudgeSettings {
  definitions: readonly AlarmDefinition[];
  settleMs: number;
}

/**
 * The window of a rule: its last `evaluationPeriods` complete periods before `now`. The `slow`
 * rule judges settled periods only (a request is known never to answer once the settle time has
 * passed), over at least twice the settle time: a version whose every request hangs starts few of
 * them, since each holds an instance until its time-out.
 */
export const evaluationWindow = (
  def: AlarmDefinition,
  now: number,
  settleMs = 0,
): { start: number; end: number } => {
  const length = periodMs(def);
  if (def.kind === 'slow' && settleMs > 0) {
    const end = Math.floor((now - settleMs) / length) * length;
    const span = Math.max(def.evaluationPeriods, Math.ceil((2 * settleMs) / length)) * length;
    return { start: end - span, end };
  }
  const end = Math.floor(now / length) * length;
  return { start: end - def.evaluationPeriods * length, end };
};

/**
 * Judges every rule on a version's latest complete periods against its baseline, reading each
 * version's figures once per period length.
 */
export async function checkHealth(
  reader: MetricsReader,
  settings: JudgeSettings,
  model: string,
  version: number,
  baseline: BaselineRef,
  now: number,
): Promise<HealthReport> {
  const cache = new Map<string, Promise<PeriodFigures[]>>();
  const figures = (v: number, def: AlarmDefinition): Promise<PeriodFigures[]> => {
    const range = evaluationWindow(def, now, settings.settleMs);
    const key = `${v} ${def.periodSeconds} ${range.start} ${range.end}`;
    let pending = cache.get(key);
    if (pending === undefined) {
      pending = reader.periods(model, v, range, def.periodSeconds);
      cache.set(key, pending);
    }
    return pending;
  };
  const settledBefore = now - settings.settleMs;
  const evaluations = await Promise.all(
    settings.definitions.map(async (def) => {
      const own = await figures(version, def);
      const base: Baseline =
        baseline.kind === 'production'
          ? { ...baseline, periods: await figures(baseline.version, def) }
          : baseline;
      return judge(def, own, base, {
        ...evaluationWindow(def, now, settings.settleMs),
        settledBefore,
      });
    }),
  );
  const first = settings.definitions[0];
  const started =
    first === undefined
      ? 0
      : (await figures(version, first)).reduce(
          (sum, p) => sum + Math.max(p.started, p.completed),
          0,
        );
  const state = evaluations.some((e) => e.state === 'ALARM') ? 'ALARM' : 'OK';
  return { model, version, state, evaluations, baseline, started };
}

/** The figures of an evaluation as the history record keeps them. */
export const evaluationMetrics = (
  def: AlarmDefinition,
  evaluation: Evaluation,
  baseline?: BaselineRef,
): Record<string, unknown> => ({
  rule: def.name,
  threshold: def.threshold,
  minRequests: def.minRequests,
  periodSeconds: def.periodSeconds,
  breaching: evaluation.breaching,
  datapointsToAlarm: def.datapointsToAlarm,
  ...(baseline === undefined ? {} : { baseline }),
  periods: evaluation.periods.map((p) => ({
    start: new Date(p.start).toISOString(),
    requests: p.requests,
    unfinished: p.unfinished,
    ...(p.value === undefined ? {} : { value: Number.isFinite(p.value) ? p.value : 'unfinished' }),
    ...(p.baseline === undefined
      ? {}
      : { baseline: Number.isFinite(p.baseline) ? p.baseline : 'unfinished' }),
    breaching: p.breaching,
  })),
});
