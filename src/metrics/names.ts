/**
 * The metric contract of docs/design.md in one place: the predict function emits these, the CDK
 * stack's alarms and dashboard and the local alarm evaluator read them.
 */
export const METRICS_NAMESPACE = 'Maas';

export const METRICS = {
  /** inference requests that reached a model route */
  Requests: 'Count',
  /** server-side failures (5xx): what rollback alarms watch */
  ModelErrors: 'Count',
  /** requests refused as the client's mistake (4xx other than 429) */
  ClientErrors: 'Count',
  /** end to end in the handler */
  Latency: 'Milliseconds',
  /** `session.run` alone */
  InferenceLatency: 'Milliseconds',
  /** fetching, verifying and creating a session for a cold model */
  ModelLoadLatency: 'Milliseconds',
  /** 1 on the first request a function instance serves */
  ColdStart: 'Count',
  /** NaN and ±Infinity elements in the outputs returned */
  NonFiniteOutputs: 'Count',
} as const satisfies Record<string, 'Count' | 'Milliseconds'>;

export type MetricName = keyof typeof METRICS;
export type MetricValues = Partial<Record<MetricName, number>>;

/** Dimension names. Every per-model metric is emitted under both sets below. */
export const DIMENSIONS = { model: 'Model', variant: 'Variant', version: 'Version' } as const;

/** `[Model, Variant]` for alarms per model and canary split; `[Model, Version]` per version. */
export const DIMENSION_SETS = [
  [DIMENSIONS.model, DIMENSIONS.variant],
  [DIMENSIONS.model, DIMENSIONS.version],
] as const;

/** The model version a metric is about. Metrics without it (unknown routes) carry no dimension. */
export interface MetricDimensions {
  model: string;
  version: number;
  /** production | candidate | pinned */
  variant: string;
}

/**
 * Where metrics go. `emit` is synchronous and self-contained (one EMF document per call), so
 * concurrent requests in one process never mix their dimensions.
 */
export interface MetricsSink {
  emit(values: MetricValues, dimensions?: MetricDimensions): void;
}
