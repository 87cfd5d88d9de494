import type { EmitOptions, MetricDimensions, MetricsSink, MetricValues } from './names.ts';

export interface EmittedMetrics {
  values: MetricValues;
  dimensions?: MetricDimensions;
  timestamp?: number;
}

/** Keeps what was emitted, for the tests and tools that read metrics in-process. */
export class MemoryMetricsSink implements MetricsSink {
  readonly emitted: EmittedMetrics[] = [];

  emit(values: MetricValues, dimensions?: MetricDimensions, options: EmitOptions = {}): void {
    this.emitted.push({
      values: { ...values },
      ...(dimensions ? { dimensions: { ...dimensions } } : {}),
      ...(options.timestamp === undefined ? {} : { timestamp: options.timestamp }),
    });
  }
}
