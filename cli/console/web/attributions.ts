import { h } from './dom.ts';

/** What the page reads of an explain answer; the server's own shape, checked loosely. */
interface Explained {
  method?: string;
  mode?: string;
  players?: number;
  output?: string;
  target?: number;
  prediction?: number;
  base_value?: number;
  baseline?: string;
  evaluations?: number;
  attributions?: { name: string; shape: number[]; data: number[] }[];
}

const TOP = 12;
const num = (v: number | undefined): string =>
  v === undefined ? '–' : String(Number(v.toPrecision(4)));

/** Dims of one example: leading dims of 1 (the batch) left out. */
const exampleDims = (shape: readonly number[]): number[] => {
  const dims = [...shape];
  while (dims.length > 1 && dims[0] === 1) dims.shift();
  return dims;
};

/** Top attributions by size as horizontal bars: right and green raises the output, left and red lowers it. */
const bars = (name: string, data: readonly number[]): HTMLElement => {
  const items = data
    .map((value, i) => ({ value, label: `${name}[${i}]` }))
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value))
    .slice(0, TOP);
  const scale = Math.max(...items.map((i) => Math.abs(i.value)), Number.MIN_VALUE);
  return h(
    'table',
    { class: 'attribution-bars', 'data-kind': 'bars' },
    items.map((item) =>
      h(
        'tr',
        {},
        h('td', {}, item.label),
        h('td', { class: 'num' }, `${item.value >= 0 ? '+' : ''}${num(item.value)}`),
        h(
          'td',
          { class: 'bar-cell' },
          h('span', {
            class: item.value >= 0 ? 'bar up' : 'bar down',
            style: `width: ${((Math.abs(item.value) / scale) * 100).toFixed(1)}%`,
          }),
        ),
      ),
    ),
  );
};

/**
 * A heat map over the last two dims (summed over any before them, e.g. colour channels), one
 * pixel per element scaled up: red raises the output, blue lowers it, white is no effect.
 */
const heatMap = (dims: readonly number[], data: readonly number[]): HTMLElement => {
  const height = dims.at(-2) ?? 1;
  const width = dims.at(-1) ?? 1;
  const plane = new Float64Array(width * height);
  data.forEach((v, i) => {
    plane[i % plane.length] = (plane[i % plane.length] ?? 0) + v;
  });
  const scale = Math.max(...Array.from(plane, Math.abs), Number.MIN_VALUE);
  const canvas = h('canvas', {
    width,
    height,
    class: 'heat-map',
    'data-kind': 'heat-map',
    style: `width: ${Math.min(320, width * 12)}px`,
  });
  const context = canvas.getContext('2d');
  if (context !== null) {
    const image = context.createImageData(width, height);
    plane.forEach((v, i) => {
      const t = Math.min(1, Math.abs(v) / scale);
      const fade = Math.round(255 * (1 - t));
      image.data.set(v >= 0 ? [255, fade, fade, 255] : [fade, fade, 255, 255], i * 4);
    });
    context.putImageData(image, 0, 0);
  }
  return canvas;
};

/** An explain answer as people read it: a summary line, then bars (tabular) or a heat map (2-D). */
export function attributionView(body: unknown): HTMLElement {
  const e = (typeof body === 'object' && body !== null ? body : {}) as Explained;
  return h(
    'div',
    { class: 'attributions', id: 'try-attributions' },
    h(
      'p',
      {},
      `${e.method ?? '?'} (${e.mode ?? '?'}, ${e.players ?? '?'} players) · ${e.evaluations ?? '?'} evaluations · `,
      `${e.output ?? '?'}[${e.target ?? '?'}] = ${num(e.prediction)} against ${num(e.base_value)} for the ${e.baseline ?? ''} baseline`,
    ),
    (e.attributions ?? []).map((a) => {
      const dims = exampleDims(a.shape);
      return h(
        'div',
        { class: 'attribution' },
        h('h3', {}, a.name),
        dims.length >= 2 ? heatMap(dims, a.data) : bars(a.name, a.data),
      );
    }),
  );
}
