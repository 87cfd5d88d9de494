import {
  type AlarmDefinition,
  type Datapoint,
  type MetricsReader,
  type PeriodFigures,
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
 * print under `Model` + `Version` (routed requests only: pinned ones carry no `Version`), kept for
 * as long as the longest rule looks back, and answered per period with the same statistics
 * GetMetricData computes: `datapoints` one statistic of one metric (the alarm triggers, charts),
 * `periods` every figure the rules judge.
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

  async periods(
    model: string,
    version: number,
    range: { start: number; end: number },
    periodSeconds: number,
  ): Promise<PeriodFigures[]> {
    const samples = this.series.get(`${model}@${version}`)?.samples ?? [];
    const length = periodSeconds * 1000;
    const buckets = new Map<number, { figures: PeriodFigures; latencies: number[] }>();
    const sum = (values: number[] | undefined): number =>
      values?.reduce((total, v) => total + v, 0) ?? 0;
    for (const sample of samples) {
      if (sample.at < range.start || sample.at >= range.end) continue;
      const start = range.start + Math.floor((sample.at - range.start) / length) * length;
      let bucket = buckets.get(start);
      if (bucket === undefined) {
        bucket = {
          figures: {
            start,
            started: 0,
            completed: 0,
            errors: 0,
            shadowChecks: 0,
            shadowRegressions: 0,
          },
          latencies: [],
        };
        buckets.set(start, bucket);
      }
      const f = bucket.figures;
      f.started += sum(sample.values.Started);
      f.completed += sample.requests;
      f.errors += sum(sample.values.ModelErrors);
      f.shadowChecks += sum(sample.values.ShadowChecks);
      f.shadowRegressions += sum(sample.values.ShadowRegressions);
      bucket.latencies.push(...(sample.values.Latency ?? []));
    }
    return [...buckets.values()]
      .sort((a, b) => a.figures.start - b.figures.start)
      .map(({ figures, latencies }) => {
        const p50 = statisticOf('p50', latencies);
        const p99 = statisticOf('p99', latencies);
        return {
          ...figures,
          ...(p50 === undefined ? {} : { p50 }),
          ...(p99 === undefined ? {} : { p99 }),
        };
      });
  }

  /** One statistic of one metric per period (what an alarm's trigger or a chart reads). */
  async datapoints(
    def: Pick<AlarmDefinition, 'metricName' | 'exactStatistic' | 'periodSeconds'>,
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
