import type { MetricDimensions, MetricsSink, MetricValues } from './names.ts';

export interface EmittedMetrics {
  values: MetricValues;
  dimensions?: MetricDimensions;
}

/** Keeps what was emitted, for the tests and tools that read metrics in-process. */
export class MemoryMetricsSink implements MetricsSink {
  readonly emitted: EmittedMetrics[] = [];

  emit(values: MetricValues, dimensions?: MetricDimensions): void {
    this.emitted.push(
      dimensions
        ? { values: { ...values }, dimensions: { ...dimensions } }
        : { values: { ...values } },
    );
  }
}
