export { type EmfRecord, parseEmfLine } from './emf.ts';
export { type EmittedMetrics, MemoryMetricsSink } from './memory.ts';
export {
  DIMENSION_SETS,
  DIMENSIONS,
  type EmitOptions,
  isRouted,
  METRICS,
  METRICS_NAMESPACE,
  type MetricDimensions,
  type MetricName,
  type MetricsSink,
  type MetricValues,
} from './names.ts';
export { PowertoolsMetricsSink } from './powertools.ts';
