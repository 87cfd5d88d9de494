import {
  type AlarmDefinition,
  type Datapoint,
  type Evaluation,
  evaluate,
  periodMs,
} from './alarms.ts';

/** Per-period figures of one model version: CloudWatch in the cloud, the EMF evaluator locally. */
export interface MetricsReader {
  /**
   * The rule's `exactStatistic` of its metric and the `Requests` sum, per period of the rule, for
   * the periods starting in [start, end).
   */
  datapoints(
    def: AlarmDefinition,
    model: string,
    version: number,
    range: { start: number; end: number },
  ): Promise<Datapoint[]>;
}

export interface HealthReport {
  model: string;
  version: number;
  /** ALARM when any rule is in ALARM */
  state: 'OK' | 'ALARM';
  evaluations: Evaluation[];
}

/** The window of a rule that ends at the last complete period before `now`. */
export const evaluationWindow = (
  def: AlarmDefinition,
  now: number,
): { start: number; end: number } => {
  const length = periodMs(def);
  const end = Math.floor(now / length) * length;
  return { start: end - def.evaluationPeriods * length, end };
};

/** Applies every rule to a version's latest complete periods. */
export async function checkHealth(
  reader: MetricsReader,
  definitions: readonly AlarmDefinition[],
  model: string,
  version: number,
  now: number,
): Promise<HealthReport> {
  const evaluations = await Promise.all(
    definitions.map(async (def) => {
      const window = evaluationWindow(def, now);
      return evaluate(def, await reader.datapoints(def, model, version, window), window.end);
    }),
  );
  const state = evaluations.some((e) => e.state === 'ALARM') ? 'ALARM' : 'OK';
  return { model, version, state, evaluations };
}

/** The figures of an evaluation as the history record keeps them. */
export const evaluationMetrics = (
  def: AlarmDefinition,
  evaluation: Evaluation,
): Record<string, unknown> => ({
  metric: def.metricName,
  statistic: def.exactStatistic,
  threshold: def.threshold,
  minRequests: def.minRequests,
  periodSeconds: def.periodSeconds,
  breaching: evaluation.breaching,
  datapointsToAlarm: def.datapointsToAlarm,
  datapoints: evaluation.datapoints.map((p) => ({
    start: new Date(p.start).toISOString(),
    requests: p.requests,
    ...(p.value === undefined ? {} : { value: p.value }),
  })),
});
