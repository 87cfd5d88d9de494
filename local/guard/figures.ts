/**
 * The predict handlers' figures kept for people: per model version, one bucket per second for the
 * last minutes (requests, errors, a bounded sample of latencies), and running totals for
 * Prometheus. Memory is bounded three ways: buckets per series, latency samples per bucket and
 * series per store (the least recently active series goes first).
 */

export interface FiguresOptions {
  /** @default 1000 */
  bucketMs?: number;
  /** how far back the charts can look. @default 15 minutes */
  retainMs?: number;
  /** model versions kept at once. @default 500 */
  maxSeries?: number;
  /** latencies kept per bucket for p50 and p99 (a uniform sample beyond). @default 256 */
  maxLatencySamples?: number;
}

interface Bucket {
  start: number;
  requests: number;
  modelErrors: number;
  clientErrors: number;
  /** how many latencies the bucket saw; `latencies` is a uniform sample of them */
  latencyCount: number;
  latencies: number[];
}

/** Upper bounds (ms) of the latency histogram, as Prometheus client libraries pick them. */
export const LATENCY_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000] as const;

interface Totals {
  requests: number;
  modelErrors: number;
  clientErrors: number;
  coldStarts: number;
  latencySum: number;
  latencyCount: number;
  /** cumulative counts per bound of LATENCY_BOUNDS_MS */
  latencyBuckets: number[];
}

interface Series {
  model: string;
  version: number;
  lastAt: number;
  buckets: Bucket[];
  totals: Totals;
}

/** One version's chart data: one entry per step, `null` where nothing was measured. */
export interface VersionSeries {
  version: number;
  /** step starts, epoch ms */
  t: number[];
  /** requests per second over the step */
  rps: number[];
  /** ModelErrors / Requests, null without requests */
  errorRate: (number | null)[];
  p50: (number | null)[];
  p99: (number | null)[];
  requests: number[];
  modelErrors: number[];
}

/** A version's chart with no steps yet. */
export const emptySeries = (version: number): VersionSeries => ({
  version,
  t: [],
  rps: [],
  errorRate: [],
  p50: [],
  p99: [],
  requests: [],
  modelErrors: [],
});

const sum = (values: readonly number[] | undefined): number =>
  values?.reduce((total, v) => total + v, 0) ?? 0;

/** Nearest-rank percentile, as the guard's statistic computes p99. */
export const percentile = (sorted: readonly number[], p: number): number | null =>
  sorted.length === 0 ? null : (sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? null);

const labelValue = (value: string): string =>
  value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export class LocalFigures {
  readonly bucketMs: number;
  private readonly retainMs: number;
  private readonly maxSeries: number;
  private readonly maxLatencySamples: number;
  private readonly series = new Map<string, Series>();
  /** a deterministic sequence for the latency reservoir: figures must not depend on Math.random */
  private seed = 1;

  constructor(options: FiguresOptions = {}) {
    this.bucketMs = options.bucketMs ?? 1000;
    this.retainMs = options.retainMs ?? 15 * 60_000;
    this.maxSeries = options.maxSeries ?? 500;
    this.maxLatencySamples = options.maxLatencySamples ?? 256;
  }

  /** One EMF document of a version: its values by metric name. */
  add(model: string, version: number, values: Record<string, number[]>, at: number): void {
    const id = `${model}@${version}`;
    let series = this.series.get(id);
    if (series === undefined) {
      if (this.series.size >= this.maxSeries) this.evictOldest();
      series = {
        model,
        version,
        lastAt: at,
        buckets: [],
        totals: {
          requests: 0,
          modelErrors: 0,
          clientErrors: 0,
          coldStarts: 0,
          latencySum: 0,
          latencyCount: 0,
          latencyBuckets: LATENCY_BOUNDS_MS.map(() => 0),
        },
      };
      this.series.set(id, series);
    }
    series.lastAt = Math.max(series.lastAt, at);
    const bucket = this.bucketAt(series, at);
    const requests = sum(values.Requests);
    const modelErrors = sum(values.ModelErrors);
    const clientErrors = sum(values.ClientErrors);
    const latencies = values.Latency ?? [];
    const totals = series.totals;
    totals.requests += requests;
    totals.modelErrors += modelErrors;
    totals.clientErrors += clientErrors;
    totals.coldStarts += sum(values.ColdStart);
    if (bucket !== undefined) {
      bucket.requests += requests;
      bucket.modelErrors += modelErrors;
      bucket.clientErrors += clientErrors;
    }
    for (const latency of latencies) {
      totals.latencySum += latency;
      totals.latencyCount += 1;
      LATENCY_BOUNDS_MS.forEach((bound, i) => {
        if (latency <= bound) totals.latencyBuckets[i] = (totals.latencyBuckets[i] ?? 0) + 1;
      });
      if (bucket !== undefined) this.sample(bucket, latency);
    }
    this.prune(series, series.lastAt);
  }

  /** Versions of `model` with figures retained. */
  versions(model: string): number[] {
    return [...this.series.values()]
      .filter((s) => s.model === model)
      .map((s) => s.version)
      .sort((a, b) => a - b);
  }

  /** The chart data of one version over [start, end), in steps of `stepMs` (a multiple of the bucket). */
  chart(
    model: string,
    version: number,
    range: { start: number; end: number },
    stepMs: number,
  ): VersionSeries {
    const step = Math.max(this.bucketMs, Math.round(stepMs / this.bucketMs) * this.bucketMs);
    const first = Math.floor(range.start / step) * step;
    const count = Math.max(0, Math.ceil((range.end - first) / step));
    const steps = Array.from({ length: count }, (_, i) => ({
      start: first + i * step,
      requests: 0,
      modelErrors: 0,
      latencies: [] as number[],
    }));
    for (const bucket of this.series.get(`${model}@${version}`)?.buckets ?? []) {
      const into = steps[Math.floor((bucket.start - first) / step)];
      if (into === undefined) continue;
      into.requests += bucket.requests;
      into.modelErrors += bucket.modelErrors;
      into.latencies.push(...bucket.latencies);
    }
    const out = emptySeries(version);
    for (const s of steps) {
      const sorted = s.latencies.sort((a, b) => a - b);
      out.t.push(s.start);
      out.rps.push(s.requests / (step / 1000));
      out.errorRate.push(s.requests > 0 ? s.modelErrors / s.requests : null);
      out.p50.push(percentile(sorted, 0.5));
      out.p99.push(percentile(sorted, 0.99));
      out.requests.push(s.requests);
      out.modelErrors.push(s.modelErrors);
    }
    return out;
  }

  /** Prometheus text exposition (version 0.0.4) of the running totals, per model version. */
  prometheus(): string {
    const all = [...this.series.values()].sort(
      (a, b) => a.model.localeCompare(b.model) || a.version - b.version,
    );
    const lines: string[] = [];
    const counter = (name: string, help: string, pick: (t: Totals) => number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const s of all) lines.push(`${name}{${labels(s)}} ${pick(s.totals)}`);
    };
    const labels = (s: Series): string => `model="${labelValue(s.model)}",version="${s.version}"`;
    counter(
      'maas_requests_total',
      'Inference requests that reached a model version.',
      (t) => t.requests,
    );
    counter(
      'maas_model_errors_total',
      'Requests that failed server-side (what the guard rolls back on).',
      (t) => t.modelErrors,
    );
    counter(
      'maas_client_errors_total',
      'Requests refused as the client’s mistake (4xx other than 429).',
      (t) => t.clientErrors,
    );
    counter(
      'maas_cold_starts_total',
      'First requests served by a handler instance.',
      (t) => t.coldStarts,
    );
    const histogram = 'maas_latency_milliseconds';
    lines.push(
      `# HELP ${histogram} End-to-end latency in the predict handler.`,
      `# TYPE ${histogram} histogram`,
    );
    for (const s of all) {
      LATENCY_BOUNDS_MS.forEach((bound, i) => {
        lines.push(
          `${histogram}_bucket{${labels(s)},le="${bound}"} ${s.totals.latencyBuckets[i] ?? 0}`,
        );
      });
      lines.push(
        `${histogram}_bucket{${labels(s)},le="+Inf"} ${s.totals.latencyCount}`,
        `${histogram}_sum{${labels(s)}} ${s.totals.latencySum}`,
        `${histogram}_count{${labels(s)}} ${s.totals.latencyCount}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }

  private bucketAt(series: Series, at: number): Bucket | undefined {
    const start = Math.floor(at / this.bucketMs) * this.bucketMs;
    const last = series.buckets.at(-1);
    if (last !== undefined && last.start === start) return last;
    if (last === undefined || last.start < start) {
      const bucket: Bucket = {
        start,
        requests: 0,
        modelErrors: 0,
        clientErrors: 0,
        latencyCount: 0,
        latencies: [],
      };
      series.buckets.push(bucket);
      return bucket;
    }
    // a late document (handlers print concurrently): its bucket, made where it belongs in order
    let index = series.buckets.length - 1;
    while (index >= 0 && (series.buckets[index] as Bucket).start > start) index--;
    const found = series.buckets[index];
    if (found !== undefined && found.start === start) return found;
    const inserted: Bucket = {
      start,
      requests: 0,
      modelErrors: 0,
      clientErrors: 0,
      latencyCount: 0,
      latencies: [],
    };
    series.buckets.splice(index + 1, 0, inserted);
    return inserted;
  }

  /** Reservoir sampling (algorithm R): every latency of the bucket equally likely to be kept. */
  private sample(bucket: Bucket, latency: number): void {
    bucket.latencyCount += 1;
    if (bucket.latencies.length < this.maxLatencySamples) {
      bucket.latencies.push(latency);
      return;
    }
    this.seed = (this.seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    const slot = this.seed % bucket.latencyCount;
    if (slot < this.maxLatencySamples) bucket.latencies[slot] = latency;
  }

  private prune(series: Series, now: number): void {
    const oldest = now - this.retainMs;
    let drop = 0;
    while (drop < series.buckets.length && (series.buckets[drop] as Bucket).start < oldest) drop++;
    if (drop > 0) series.buckets.splice(0, drop);
  }

  private evictOldest(): void {
    let oldest: [string, Series] | undefined;
    for (const entry of this.series)
      if (oldest === undefined || entry[1].lastAt < oldest[1].lastAt) oldest = entry;
    if (oldest !== undefined) this.series.delete(oldest[0]);
  }

  /** series and buckets held, for the bound's test */
  size(): { series: number; buckets: number; latencies: number } {
    let buckets = 0;
    let latencies = 0;
    for (const s of this.series.values()) {
      buckets += s.buckets.length;
      for (const b of s.buckets) latencies += b.latencies.length;
    }
    return { series: this.series.size, buckets, latencies };
  }
}
