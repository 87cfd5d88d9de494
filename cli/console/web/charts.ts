import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { MetricsResponse, RuleLine, VersionSeries } from '../types.ts';
import { h } from './dom.ts';

const PALETTE = ['#2563eb', '#d97706', '#059669', '#7c3aed', '#db2777', '#0891b2'];
const THRESHOLD = '#dc2626';

interface ChartSpec {
  id: string;
  title: string;
  /** per version, the values to draw; several lines per version for latency */
  lines: { label: string; pick: (s: VersionSeries) => (number | null)[]; dash?: number[] }[];
  rule?: RuleLine['series'];
  unit: (v: number) => string;
}

const SPECS: ChartSpec[] = [
  {
    id: 'requests',
    title: 'Requests / s',
    lines: [{ label: '', pick: (s) => s.rps }],
    unit: (v) => v.toFixed(v < 10 ? 1 : 0),
  },
  {
    id: 'errors',
    title: 'Error rate (server-side)',
    lines: [{ label: '', pick: (s) => s.errorRate }],
    rule: 'errorRate',
    unit: (v) => `${(v * 100).toFixed(0)} %`,
  },
  {
    id: 'latency',
    title: 'Latency p50 / p99 (ms)',
    lines: [
      { label: ' p50', pick: (s) => s.p50 },
      { label: ' p99', pick: (s) => s.p99, dash: [6, 4] },
    ],
    rule: 'p99',
    unit: (v) => `${v.toFixed(v < 10 ? 1 : 0)}`,
  },
];

/**
 * The model page's live charts: one per figure, a line per version, the alarm threshold drawn as
 * a dashed red line. Rebuilt when the set of versions changes, otherwise fed new data in place.
 */
export class LiveCharts {
  readonly element: HTMLElement;
  private charts = new Map<string, { plot: uPlot; box: HTMLElement }>();
  private shape = '';

  constructor() {
    this.element = h('div', { class: 'charts' });
    window.addEventListener('resize', () => this.resize());
  }

  update(metrics: MetricsResponse): void {
    const versions = metrics.versions;
    const shape = versions.map((v) => v.version).join(',');
    const x = (versions[0]?.t ?? []).map((t) => t / 1000);
    if (shape !== this.shape || this.charts.size === 0) {
      this.destroy();
      this.shape = shape;
      for (const spec of SPECS) this.create(spec, metrics, x);
      return;
    }
    for (const spec of SPECS) {
      this.charts.get(spec.id)?.plot.setData(this.data(spec, metrics, x) as uPlot.AlignedData);
    }
  }

  destroy(): void {
    for (const { plot } of this.charts.values()) plot.destroy();
    this.charts.clear();
    this.element.replaceChildren();
  }

  private data(spec: ChartSpec, metrics: MetricsResponse, x: number[]): (number | null)[][] {
    const columns: (number | null)[][] = [x];
    for (const series of metrics.versions) {
      for (const line of spec.lines) columns.push(line.pick(series).slice(0, x.length));
    }
    const rule = metrics.rules.find((r) => r.series === spec.rule);
    if (rule !== undefined) columns.push(x.map(() => rule.threshold));
    return columns;
  }

  /** a chart's plot width: three across on a wide window, one on a narrow one */
  private width(): number {
    const available = this.element.clientWidth || document.body.clientWidth - 48;
    const columns = available >= 960 ? 3 : available >= 640 ? 2 : 1;
    // each figure adds 8 px padding and a 1 px border on both sides
    return Math.max(200, Math.floor((available - (columns - 1) * 16) / columns) - 18);
  }

  private create(spec: ChartSpec, metrics: MetricsResponse, x: number[]): void {
    const series: uPlot.Series[] = [{}];
    metrics.versions.forEach((v, i) => {
      for (const line of spec.lines) {
        series.push({
          label: `v${v.version}${line.label}`,
          stroke: PALETTE[i % PALETTE.length],
          width: 2,
          spanGaps: false,
          ...(line.dash === undefined ? {} : { dash: line.dash }),
        });
      }
    });
    const rule = metrics.rules.find((r) => r.series === spec.rule);
    if (rule !== undefined) {
      series.push({
        label: `alarm > ${spec.unit(rule.threshold)}`,
        stroke: THRESHOLD,
        width: 1.5,
        dash: [4, 4],
        points: { show: false },
      });
    }
    const box = h(
      'figure',
      { class: 'chart', 'data-chart': spec.id },
      h('figcaption', {}, spec.title),
    );
    this.element.append(box);
    const plot = new uPlot(
      {
        width: this.width(),
        height: 180,
        series,
        scales: {
          x: { time: true },
          y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, 1e-9) * 1.1] },
        },
        axes: [{}, { values: (_u, ticks) => ticks.map((t) => spec.unit(t)), size: 56 }],
        legend: { live: false },
        cursor: { drag: { x: false, y: false } },
      },
      this.data(spec, metrics, x) as uPlot.AlignedData,
      box,
    );
    this.charts.set(spec.id, { plot, box });
  }

  private resize(): void {
    const width = this.width();
    for (const { plot } of this.charts.values()) plot.setSize({ width, height: 180 });
  }
}
