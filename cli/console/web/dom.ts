/** A few DOM helpers instead of a framework: the page is small and mostly tables. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

export const fmtPercent = (value: number | null | undefined, digits = 1): string =>
  value === null || value === undefined ? '–' : `${(value * 100).toFixed(digits)} %`;

export const fmtRate = (value: number | null | undefined): string =>
  value === null || value === undefined ? '–' : value < 10 ? value.toFixed(2) : value.toFixed(0);

export const fmtMs = (value: number | null | undefined): string =>
  value === null || value === undefined
    ? '–'
    : value < 10
      ? `${value.toFixed(2)} ms`
      : `${value.toFixed(0)} ms`;

export const fmtBytes = (bytes: number | undefined): string => {
  if (bytes === undefined) return '–';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
};

export const fmtRatio = (value: number | undefined): string =>
  value === undefined ? '–' : `${value.toFixed(3)}×`;

/** "12 s", "3 min 5 s", "2 h 4 min" */
export const fmtDuration = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
};

export const fmtTime = (iso: string): string => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
};

/** A tiny line of the last minutes' requests, in SVG (no chart library on the list page). */
export function sparkline(values: readonly number[], width = 120, height = 24): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  const max = Math.max(1, ...values);
  const total = values.reduce((a, b) => a + b, 0);
  svg.setAttribute('aria-label', `${total} requests in the last ${values.length} steps`);
  if (values.length > 1) {
    const points = values
      .map(
        (v, i) =>
          `${((i / (values.length - 1)) * width).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`,
      )
      .join(' ');
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', points);
    svg.append(line);
  }
  return svg;
}

/** A page: shown in `#app`, stopped (timers, charts) when another one replaces it. */
export interface Page {
  element: HTMLElement;
  stop(): void;
}

/** An error as a sentence on the page. */
export const errorBox = (err: unknown): HTMLElement =>
  h('p', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err));
