import { describe, expect, it } from 'vitest';
import { LocalFigures, percentile } from '../../../local/guard/figures.ts';
import { LocalMetricsStore } from '../../../local/guard/metrics-store.ts';

const request = (latency: number, failed = false) => ({
  Requests: [1],
  ModelErrors: [failed ? 1 : 0],
  Latency: [latency],
});

describe('LocalFigures', () => {
  it('charts requests/s, error rate and p50/p99 per step of one version', () => {
    const figures = new LocalFigures({ bucketMs: 1000 });
    const t0 = 1_000_000;
    for (let i = 0; i < 10; i++) figures.add('m', 1, request(10 + i, i < 3), t0 + i * 10);
    for (let i = 0; i < 4; i++) figures.add('m', 1, request(100), t0 + 1000 + i);
    const chart = figures.chart('m', 1, { start: t0, end: t0 + 3000 }, 1000);
    expect(chart.t).toEqual([t0, t0 + 1000, t0 + 2000]);
    expect(chart.requests).toEqual([10, 4, 0]);
    expect(chart.rps).toEqual([10, 4, 0]);
    expect(chart.errorRate).toEqual([0.3, 0, null]);
    expect(chart.p50).toEqual([14, 100, null]);
    expect(chart.p99).toEqual([19, 100, null]);
    // two buckets merged into one step of 2 s
    const coarse = figures.chart('m', 1, { start: t0, end: t0 + 2000 }, 2000);
    expect(coarse.requests).toEqual([14]);
    expect(coarse.rps).toEqual([7]);
  });

  it('stays bounded: old buckets, latency samples per bucket and series beyond the cap are dropped', () => {
    const figures = new LocalFigures({
      bucketMs: 1000,
      retainMs: 10_000,
      maxSeries: 3,
      maxLatencySamples: 16,
    });
    for (let second = 0; second < 100; second++) {
      for (let i = 0; i < 50; i++) figures.add('m', 1, request(i), second * 1000 + i);
    }
    for (let v = 2; v <= 6; v++) figures.add('m', v, request(1), 100_000 + v);
    const size = figures.size();
    expect(size.series).toBe(3);
    // series m@1 was the least recently active: evicted; the rest hold one bucket each
    expect(figures.versions('m')).toEqual([4, 5, 6]);
    expect(size.buckets).toBe(3);
    const busy = new LocalFigures({ bucketMs: 1000, retainMs: 10_000, maxLatencySamples: 16 });
    for (let second = 0; second < 100; second++) {
      for (let i = 0; i < 50; i++) busy.add('m', 1, request(i), second * 1000 + i);
    }
    expect(busy.size().buckets).toBeLessThanOrEqual(11);
    expect(busy.size().latencies).toBeLessThanOrEqual(11 * 16);
  });

  it('serves running totals as Prometheus text, labels escaped', () => {
    const figures = new LocalFigures();
    figures.add('iris', 1, { ...request(3), ColdStart: [1] }, 1000);
    figures.add('iris', 1, request(700, true), 1001);
    figures.add('we"ird', 2, request(20_000), 1002);
    const text = figures.prometheus();
    expect(text).toContain('# TYPE maas_requests_total counter');
    expect(text).toContain('maas_requests_total{model="iris",version="1"} 2');
    expect(text).toContain('maas_model_errors_total{model="iris",version="1"} 1');
    expect(text).toContain('maas_cold_starts_total{model="iris",version="1"} 1');
    expect(text).toContain('maas_latency_milliseconds_bucket{model="iris",version="1",le="5"} 1');
    expect(text).toContain(
      'maas_latency_milliseconds_bucket{model="iris",version="1",le="1000"} 2',
    );
    expect(text).toContain(
      'maas_latency_milliseconds_bucket{model="iris",version="1",le="+Inf"} 2',
    );
    expect(text).toContain('maas_latency_milliseconds_sum{model="iris",version="1"} 703');
    expect(text).toContain(
      'maas_latency_milliseconds_bucket{model="we\\"ird",version="2",le="10000"} 0',
    );
    // every sample line: name{labels} value
    for (const line of text.trim().split('\n')) {
      expect(line).toMatch(/^(# (HELP|TYPE) .+|[a-z_]+\{[^}]*\} [0-9.e+-]+)$/);
    }
  });

  it('is fed by the guard store with every EMF document of a version', () => {
    const store = new LocalMetricsStore(5000);
    store.add(
      {
        namespace: 'Maas',
        timestamp: 5000,
        dimensionSets: [['Model', 'Version']],
        dimensions: { Model: 'm', Version: '3' },
        values: request(12),
        units: {},
      },
      5000,
    );
    expect(store.figures.versions('m')).toEqual([3]);
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
  });
});
