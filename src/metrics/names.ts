/**
 * The metric contract of docs/design.md in one place: the predict function emits these, the CDK
 * stack's alarms and dashboard and the local alarm evaluator read them.
 */
export const METRICS_NAMESPACE = 'Maas';

export const METRICS = {
  /** inference requests that reached a model version, written before it runs (guard series only) */
  Started: 'Count',
  /** inference requests that reached a model route and were answered */
  Requests: 'Count',
  /** server-side failures (5xx): what rollback alarms watch */
  ModelErrors: 'Count',
  /** requests refused as the client's mistake (4xx other than 429) */
  ClientErrors: 'Count',
  /** end to end in the handler, model load excluded (cold loads are ModelLoadLatency) */
  Latency: 'Milliseconds',
  /** `session.run` alone */
  InferenceLatency: 'Milliseconds',
  /** fetching, verifying and creating a session for a cold model */
  ModelLoadLatency: 'Milliseconds',
  /** 1 on the first request a function instance serves */
  ColdStart: 'Count',
  /** NaN and ±Infinity elements in the outputs returned */
  NonFiniteOutputs: 'Count',
  /** explain requests that reached a model route; never counted as Requests or ModelErrors */
  ExplainRequests: 'Count',
  /** end to end of an explain request */
  ExplainLatency: 'Milliseconds',
  /** model runs on one example an explanation spent, the prediction included */
  ExplainEvaluations: 'Count',
  /** a production failure in its watch window re-run on the previous known-good version */
  ShadowChecks: 'Count',
  /** of those, the ones the previous version answered: failures that are the new version's */
  ShadowRegressions: 'Count',
  /** the shadow run's own time (ms), the extra latency the failing request paid */
  ShadowLatency: 'Milliseconds',
} as const satisfies Record<string, 'Count' | 'Milliseconds'>;

export type MetricName = keyof typeof METRICS;
export type MetricValues = Partial<Record<MetricName, number>>;

/** Dimension names. Every per-model metric is emitted under both sets below. */
export const DIMENSIONS = { model: 'Model', variant: 'Variant', version: 'Version' } as const;

/**
 * `[Model, Variant]` for dashboards and the canary split (every request); `[Model, Version]` for
 * the guard, emitted only for *routed* requests (production, candidate): a request pinned by
 * version never counts toward a rollout decision.
 */
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
  emit(values: MetricValues, dimensions?: MetricDimensions, options?: EmitOptions): void;
}

export interface EmitOptions {
  /**
   * epoch ms the document is stamped with (the period it counts in): a request's `Started` and
   * its answer both carry the request's start, so they land in the same period
   */
  timestamp?: number;
}

/** Whether a request's metrics go to the guard's `[Model, Version]` series. */
export const isRouted = (dimensions: MetricDimensions): boolean => dimensions.variant !== 'pinned';
