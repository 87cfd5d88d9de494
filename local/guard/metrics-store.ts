import {
  type AlarmDefinition,
  type Datapoint,
  type MetricsReader,
  periodMs,
  statisticOf,
} from '../../src/guard/index.ts';
import { DIMENSIONS, type EmfRecord, METRICS_NAMESPACE } from '../../src/metrics/index.ts';
import { LocalFigures } from './figures.ts';

/** One request as the predict handler reported it. */
interface Sample {
  at: number;
  requests: number;
  values: Record<string, number[]>;
}

export interface SeriesKey {
  model: string;
  version: number;
}

/**
 * What CloudWatch would hold for the guard's series: every EMF document the predict instances
 * print under `Model` + `Version`, kept for as long as the longest rule looks back, and answered
 * per period with the same statistics GetMetricData computes.
 */
export class LocalMetricsStore implements MetricsReader {
  private readonly series = new Map<string, { key: SeriesKey; samples: Sample[] }>();
  /**
   * The same documents kept longer and coarser for the console's charts and `/metrics`: the
   * guard's own samples live only as long as its longest rule looks back.
   */
  readonly figures: LocalFigures;

  constructor(
    private readonly retainMs: number,
    figures: LocalFigures = new LocalFigures(),
  ) {
    this.figures = figures;
  }

  /** Keeps a record of the `Maas` namespace carrying `Model` and `Version`; ignores the rest. */
  add(record: EmfRecord, arrivedAt: number): void {
    if (record.namespace !== METRICS_NAMESPACE) return;
    const model = record.dimensions[DIMENSIONS.model];
    const version = Number(record.dimensions[DIMENSIONS.version]);
    if (model === undefined || !Number.isSafeInteger(version) || version < 1) return;
    const id = `${model}@${version}`;
    let entry = this.series.get(id);
    if (entry === undefined) {
      entry = { key: { model, version }, samples: [] };
      this.series.set(id, entry);
    }
    const requests = record.values.Requests?.reduce((sum, v) => sum + v, 0) ?? 0;
    const at = record.timestamp > 0 ? record.timestamp : arrivedAt;
    entry.samples.push({ at, requests, values: record.values });
    this.figures.add(model, version, record.values, at);
  }

  /** Every version that reported anything still retained. */
  keys(): SeriesKey[] {
    return [...this.series.values()].map((entry) => entry.key);
  }

  /** Drops samples older than the retention before `now`, and series left empty. */
  prune(now: number): void {
    const oldest = now - this.retainMs;
    for (const [id, entry] of this.series) {
      entry.samples = entry.samples.filter((sample) => sample.at >= oldest);
      if (entry.samples.length === 0) this.series.delete(id);
    }
  }

  async datapoints(
    def: AlarmDefinition,
    model: string,
    version: number,
    range: { start: number; end: number },
  ): Promise<Datapoint[]> {
    const samples = this.series.get(`${model}@${version}`)?.samples ?? [];
    const length = periodMs(def);
    const buckets = new Map<number, { requests: number; values: number[] }>();
    for (const sample of samples) {
      if (sample.at < range.start || sample.at >= range.end) continue;
      const start = range.start + Math.floor((sample.at - range.start) / length) * length;
      let bucket = buckets.get(start);
      if (bucket === undefined) {
        bucket = { requests: 0, values: [] };
        buckets.set(start, bucket);
      }
      bucket.requests += sample.requests;
      bucket.values.push(...(sample.values[def.metricName] ?? []));
    }
    return [...buckets.entries()]
      .sort(([a], [b]) => a - b)
      .map(([start, bucket]) => {
        const value = statisticOf(def.exactStatistic, bucket.values);
        return value === undefined
          ? { start, requests: bucket.requests }
          : { start, requests: bucket.requests, value };
      });
  }
}
