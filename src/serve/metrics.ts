import { MaasError } from '../errors/index.ts';
import type { MetricDimensions, MetricValues } from '../metrics/index.ts';
import { InputRejectedError } from '../protocol/index.ts';
import type { RouteVariant } from '../runtime/index.ts';
import type { Exchange } from './infer.ts';

const isVariant = (v: unknown): v is RouteVariant =>
  v === 'production' || v === 'candidate' || v === 'pinned';

/** The model version a request counts against: the one that served it, or the one its error names. */
export const dimensionsOf = (
  ex: Exchange,
  routedModel: string | undefined,
  failure: unknown,
): MetricDimensions | undefined => {
  if (ex.loaded) {
    const { model, version, variant } = ex.loaded;
    return { model, version, variant };
  }
  if (failure instanceof MaasError && routedModel !== undefined) {
    const { model, version, variant } = failure.details;
    if (model === routedModel && typeof version === 'number' && isVariant(variant)) {
      return { model, version, variant };
    }
  }
  return undefined;
};

/**
 * The request metrics of one inference request (docs/design.md, "Metrics"). `Latency` leaves out
 * the model's cold load (its own `ModelLoadLatency`) and the shadow's re-run (`ShadowLatency`):
 * what the guard's latency rules judge is the version's own serving time.
 */
export const inferenceMetrics = (
  ex: Exchange,
  status: number,
  latencyMs: number,
  failure: unknown,
): MetricValues => {
  // A run that onnxruntime refuses on signature-valid inputs answers 400 (a client can never
  // cause a 500) but counts against the model version: a canary that fails where production
  // succeeds must trip the ModelErrors alarm and be rolled back.
  const modelFailed = failure instanceof InputRejectedError;
  return {
    Requests: 1,
    Latency: Math.max(0, latencyMs - (ex.loaded?.load?.totalMs ?? 0) - (ex.shadow?.ms ?? 0)),
    ModelErrors: status >= 500 || modelFailed ? 1 : 0,
    ClientErrors: status >= 400 && status < 500 && status !== 429 && !modelFailed ? 1 : 0,
    ...(ex.inferenceMs === undefined ? {} : { InferenceLatency: ex.inferenceMs }),
    ...(ex.loaded?.load === undefined ? {} : { ModelLoadLatency: ex.loaded.load.totalMs }),
    ...(ex.nonFiniteOutputs === undefined ? {} : { NonFiniteOutputs: ex.nonFiniteOutputs }),
    ...(ex.shadow === undefined
      ? {}
      : {
          ShadowChecks: 1,
          ShadowRegressions: ex.shadow.answered ? 1 : 0,
          ShadowLatency: ex.shadow.ms,
        }),
  };
};
