export {
  createPredictApp,
  PLATFORM,
  type PredictApp,
  type PredictAppDeps,
  type RequestRecord,
  SERVER_EXTENSIONS,
} from './app.ts';
export {
  type ExplainDeps,
  type ExplainRecord,
  explainMetrics,
  explainPath,
  explainV1,
  explainV2,
} from './explain.ts';
export { type Exchange, type InferDeps, inferV2, predictV1 } from './infer.ts';
export { dimensionsOf, inferenceMetrics } from './metrics.ts';
export {
  EXPLAIN_ROUTES,
  INFERENCE_ROUTES,
  matchRoute,
  type Route,
  type RouteName,
} from './routes.ts';
export {
  DEFAULT_SHADOW_SHARE,
  ShadowBudget,
  type ShadowSettings,
  shadowFromEnv,
  shadowTarget,
} from './shadow.ts';
