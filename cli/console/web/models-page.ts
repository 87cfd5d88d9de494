import type { ModelRow, ModelsResponse } from '../types.ts';
import { api } from './api.ts';
import {
  errorBox,
  fmtDuration,
  fmtPercent,
  fmtRate,
  h,
  type Page,
  replace,
  sparkline,
} from './dom.ts';
import { uploadCard } from './upload.ts';

const REFRESH_MS = 2000;

export const statusBadge = (status: string, detail?: string): HTMLElement =>
  h(
    'span',
    { class: `badge status-${status.replace(/\s+/g, '-')}`, title: detail, 'data-status': status },
    status,
  );

function candidateCell(row: ModelRow, skewMs: number): Node | string {
  const c = row.candidate;
  if (c === undefined) return '–';
  const left = Date.parse(c.bakeUntil) - (Date.now() + skewMs);
  return h(
    'span',
    {},
    `v${c.version} at ${fmtPercent(c.weight, 0)}`,
    h('br'),
    h(
      'small',
      {},
      left > 0 ? `bakes ${fmtDuration(left)} more` : 'baked: promotes when its alarms are OK',
    ),
  );
}

/** Every model with its versions, traffic and status, refreshed every couple of seconds. */
export function modelsPage(): Page {
  const message = h('div', { class: 'messages' });
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'models' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Model'),
        h('th', {}, 'Status'),
        h('th', {}, 'Production'),
        h('th', {}, 'Candidate'),
        h('th', { class: 'num' }, 'Req/s'),
        h('th', { class: 'num' }, 'Errors'),
        h('th', {}, 'Traffic'),
      ),
    ),
    body,
  );
  const loaded = h('p', { class: 'muted', id: 'models-state' }, 'Loading the models…');
  const element = h(
    'div',
    { class: 'page models-page' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Models'), loaded),
    message,
    h('div', { class: 'scroll' }, table),
    uploadCard(),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const render = (data: ModelsResponse) => {
    const skew = Date.parse(data.now) - Date.now();
    replace(
      message,
      data.metricsError === undefined ? null : h('p', { class: 'warning' }, data.metricsError),
    );
    if (data.models.length === 0) {
      replace(
        body,
        h(
          'tr',
          {},
          h(
            'td',
            { colspan: 7, class: 'muted' },
            'No models yet: upload one below, or `maas push model.onnx --model NAME`.',
          ),
        ),
      );
    } else {
      replace(
        body,
        data.models.map((row) =>
          h(
            'tr',
            { 'data-model': row.name },
            h('td', {}, h('a', { href: `#/models/${encodeURIComponent(row.name)}` }, row.name)),
            h(
              'td',
              {},
              statusBadge(row.status, row.statusDetail),
              row.statusDetail === undefined
                ? null
                : h('div', { class: 'detail' }, row.statusDetail),
            ),
            h('td', {}, row.production === undefined ? '–' : `v${row.production}`),
            h('td', {}, candidateCell(row, skew)),
            h('td', { class: 'num' }, fmtRate(row.rps)),
            h('td', { class: 'num' }, fmtPercent(row.errorRate)),
            h('td', {}, sparkline(row.spark)),
          ),
        ),
      );
    }
    replace(
      loaded,
      `${data.models.length} model${data.models.length === 1 ? '' : 's'} · updated ${new Date().toLocaleTimeString()}`,
    );
    if (loaded.dataset.ready !== 'true') {
      // the browser test reads it: time from navigation to a usable models table
      performance.mark('models-interactive');
      loaded.dataset.ready = 'true';
    }
  };

  const refresh = async () => {
    try {
      render(await api<ModelsResponse>('/api/models'));
    } catch (err) {
      replace(message, errorBox(err));
      replace(loaded, 'Could not load the models; retrying…');
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  };
  void refresh();
  return {
    element,
    stop: () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
