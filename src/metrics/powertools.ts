import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
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

/**
 * Metrics as CloudWatch EMF lines on stdout through Powertools. Each `emit` publishes one
 * document with the two dimension sets of the contract. `Model`, which both sets share, is a
 * default dimension (Powertools puts the defaults at the head of every set) and each
 * `addDimensions` call adds the rest of one set: giving `Model` to both sets instead makes
 * Powertools warn of a key collision on every publish, a line per request in the function's log.
 * The default `service` dimension is dropped so the sets are exactly `[Model, Variant]` and
 * `[Model, Version]`, the schemas the dashboards and the guard query; a pinned request gets only
 * the first (see `isRouted`).
 */
export class PowertoolsMetricsSink implements MetricsSink {
  readonly metrics: Metrics;

  constructor(metrics: Metrics = new Metrics({ namespace: METRICS_NAMESPACE })) {
    this.metrics = metrics;
    this.metrics.clearDefaultDimensions();
  }

  emit(values: MetricValues, dimensions?: MetricDimensions, options: EmitOptions = {}): void {
    const entries = Object.entries(values) as [MetricName, number][];
    if (entries.length === 0) return;
    this.metrics.clearDefaultDimensions();
    if (dimensions) {
      this.metrics.setDefaultDimensions({ [DIMENSIONS.model]: dimensions.model });
      this.metrics.addDimensions({ [DIMENSIONS.variant]: dimensions.variant });
      if (isRouted(dimensions)) {
        this.metrics.addDimensions({ [DIMENSIONS.version]: String(dimensions.version) });
      }
    }
    // Powertools keeps a timestamp across publishes: stamp every document.
    this.metrics.setTimestamp(options.timestamp ?? Date.now());
    for (const [name, value] of entries) {
      this.metrics.addMetric(name, MetricUnit[METRICS[name]], value);
    }
    this.metrics.publishStoredMetrics();
  }
}
