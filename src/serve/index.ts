export {
  createPredictApp,
  PLATFORM,
  type PredictApp,
  type PredictAppDeps,
  type RequestRecord,
  SERVER_EXTENSIONS,
} from './app.ts';
export { type Exchange, type InferDeps, inferV2, predictV1 } from './infer.ts';
export { dimensionsOf, inferenceMetrics } from './metrics.ts';
export { INFERENCE_ROUTES, matchRoute, type Route, type RouteName } from './routes.ts';
