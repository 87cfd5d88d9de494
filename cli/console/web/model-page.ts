import type {
  ActionResponse,
  HistoryEntry,
  HistoryPage,
  MetricsResponse,
  ModelResponse,
  VersionInfo,
} from '../types.ts';
import { api, post } from './api.ts';
import { LiveCharts } from './charts.ts';
import {
  errorBox,
  fmtBytes,
  fmtDuration,
  fmtMs,
  fmtPercent,
  fmtRatio,
  fmtTime,
  h,
  type Page,
  replace,
} from './dom.ts';
import { statusBadge } from './models-page.ts';
import { tryItCard } from './try-it.ts';

const MODEL_REFRESH_MS = 2000;
const METRICS_REFRESH_MS = 2000;
const HISTORY_PAGE = 50;

const tensorText = (spec: {
  name: string;
  datatype: string;
  shape: number[];
  dimNames?: (string | null | undefined)[];
}) =>
  `${spec.name} ${spec.datatype} [${spec.shape.map((d, i) => (d === -1 ? (spec.dimNames?.[i] ?? '?') : String(d))).join(', ')}]`;

function describeRecord(entry: HistoryEntry): (Node | string)[] {
  const r = entry.record;
  if (r === undefined)
    return [h('span', { class: 'error-inline' }, `${entry.key}: ${entry.error ?? 'unreadable'}`)];
  const details = r.details ?? {};
  const parts: (Node | string)[] = [];
  if (r.reason !== undefined) parts.push(r.reason);
  const alarm =
    typeof details.alarm === 'object' && details.alarm !== null
      ? (details.alarm as Record<string, unknown>)
      : undefined;
  if (typeof alarm?.name === 'string') {
    const rule = typeof alarm.rule === 'string' ? ` (rule ${alarm.rule})` : '';
    parts.push(h('div', { class: 'detail' }, `alarm ${alarm.name}${rule}`));
  }
  // the figures the guard judged, as rollback recorded them
  const metrics = alarm?.metrics ?? details.metrics;
  if (typeof metrics === 'object' && metrics !== null) {
    const m = metrics as Record<string, unknown>;
    const points = Array.isArray(m.datapoints)
      ? (m.datapoints as { requests?: number; value?: number }[])
      : [];
    const figures = points
      .filter((p) => p.value !== undefined)
      .map(
        (p) =>
          `${m.metric === 'Latency' ? fmtMs(p.value) : fmtPercent(p.value)} over ${p.requests ?? 0} req`,
      )
      .join(', ');
    parts.push(
      h(
        'div',
        { class: 'detail' },
        `${String(m.statistic ?? '')} ${String(m.metric ?? '')} > ${m.metric === 'Latency' ? fmtMs(Number(m.threshold)) : fmtPercent(Number(m.threshold))}: ${String(m.breaching ?? '?')} breaching (ALARM at ${String(m.datapointsToAlarm ?? '?')})${figures === '' ? '' : ` [${figures}]`}`,
      ),
    );
  }
  if (typeof details.sourceKey === 'string')
    parts.push(h('div', { class: 'detail' }, `from ${details.sourceKey}`));
  if (typeof details.code === 'string')
    parts.push(h('div', { class: 'detail' }, `code ${details.code}`));
  return parts.length > 0 ? parts : ['–'];
}

/** One model: versions, aliases, live charts, history, the actions and a request form. */
export function modelPage(name: string): Page {
  const base = `/api/models/${encodeURIComponent(name)}`;
  const status = h('span', { id: 'model-status' });
  const statusDetail = h('p', { class: 'detail', id: 'model-status-detail' });
  const problems = h('div', { class: 'messages', id: 'model-problems' });
  const actionResult = h('div', { class: 'messages', id: 'action-result', 'aria-live': 'polite' });
  const aliasesBox = h(
    'div',
    { class: 'card aliases', id: 'aliases' },
    h('p', { class: 'muted' }, 'Loading…'),
  );
  const charts = new LiveCharts();
  const chartsNote = h('p', { class: 'muted', id: 'charts-note' });
  const versionsBody = h('tbody');
  const historyList = h('ol', { class: 'timeline', id: 'history' });
  const historyInfo = h('p', { class: 'muted', id: 'history-info' });
  const olderButton = h(
    'button',
    { type: 'button', id: 'history-older', hidden: true },
    'Older records',
  );
  const newestButton = h(
    'button',
    { type: 'button', id: 'history-newest', hidden: true },
    'Back to newest',
  );
  const tryIt = tryItCard(name);

  const element = h(
    'div',
    { class: 'page model-page' },
    h('p', {}, h('a', { href: '#/' }, '← all models')),
    h('div', { class: 'page-head' }, h('h1', {}, name), status),
    statusDetail,
    problems,
    actionResult,
    aliasesBox,
    h('section', {}, h('h2', {}, 'Live traffic'), chartsNote, charts.element),
    h(
      'section',
      {},
      h('h2', {}, 'Versions'),
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          { class: 'versions' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              [
                'Version',
                'Aliases',
                'Served',
                'fp32',
                'int8',
                'Quantization',
                'Signature',
                'Warm-up',
                '',
              ].map((t) => h('th', {}, t)),
            ),
          ),
          versionsBody,
        ),
      ),
    ),
    tryIt.element,
    h(
      'section',
      {},
      h('h2', {}, 'History'),
      historyInfo,
      historyList,
      h('div', { class: 'row' }, newestButton, olderButton),
    ),
  );

  let stopped = false;
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const later = (id: string, fn: () => void, ms: number) => {
    if (!stopped) timers.set(id, setTimeout(fn, ms));
  };
  let lastModel = '';
  let historyBefore: string | undefined;
  let historyNext: string | undefined;

  const act = async (question: string, path: string, body: unknown) => {
    if (!confirm(question)) return;
    try {
      const result = await post<ActionResponse>(`${base}/${path}`, body);
      const shown = h('p', { class: 'ok', 'data-action': path }, result.message);
      replace(actionResult, shown);
      // a confirmation, not a status: it goes once read, so it never sits beside a newer state
      later('action', () => shown.remove(), 8000);
    } catch (err) {
      replace(actionResult, errorBox(err));
    }
    await Promise.all([refreshModel(false), refreshHistory()]);
  };

  const renderAliases = (m: ModelResponse) => {
    const a = m.aliases;
    const candidate = a?.candidate;
    const weight = h('input', {
      id: 'canary-weight',
      type: 'number',
      min: 0,
      max: 1,
      step: 0.05,
      value: candidate === undefined ? '' : String(candidate.weight),
    });
    replace(
      aliasesBox,
      h(
        'dl',
        {},
        h('dt', {}, 'Production'),
        h(
          'dd',
          { id: 'alias-production' },
          a?.production === undefined ? 'none' : `v${a.production}`,
        ),
        h('dt', {}, 'Candidate'),
        h(
          'dd',
          { id: 'alias-candidate' },
          candidate === undefined
            ? 'none'
            : [
                `v${candidate.version} at ${fmtPercent(candidate.weight, 0)} · `,
                h('span', { id: 'bake-left' }),
              ],
        ),
        h('dt', {}, 'Known good'),
        h('dd', {}, a?.knownGood?.length ? a.knownGood.map((v) => `v${v}`).join(', ') : '–'),
        h('dt', {}, 'Rolled back'),
        h(
          'dd',
          { id: 'alias-rolled-back' },
          a?.rolledBack?.length ? a.rolledBack.map((v) => `v${v}`).join(', ') : '–',
        ),
      ),
      h(
        'div',
        { class: 'actions' },
        h(
          'button',
          {
            type: 'button',
            id: 'rollback',
            class: 'danger',
            onclick: () =>
              void act(
                candidate === undefined
                  ? `Roll ${name} back: revert production to the last known-good version?`
                  : `Roll ${name} back: drop candidate v${candidate.version} and mark it rolled back?`,
                'rollback',
                {},
              ),
          },
          'Roll back',
        ),
        candidate === undefined
          ? null
          : h(
              'span',
              { class: 'weight' },
              h('label', { for: 'canary-weight' }, 'Canary weight '),
              weight,
              h(
                'button',
                {
                  type: 'button',
                  id: 'set-weight',
                  onclick: () => {
                    const value = Number(weight.value);
                    void act(
                      `Send ${fmtPercent(value, 0)} of ${name}'s traffic to candidate v${candidate.version}?`,
                      'canary',
                      {
                        weight: weight.value === '' ? null : value,
                      },
                    );
                  },
                },
                'Set weight',
              ),
            ),
      ),
    );
  };

  const versionRow = (v: VersionInfo) => {
    const m = v.manifest;
    const q = m?.quantization;
    const promote = h(
      'button',
      {
        type: 'button',
        class: 'promote',
        'data-version': v.version,
        disabled: v.labels.includes('production') || m === undefined,
        onclick: () =>
          void act(`Make ${name} v${v.version} production now?`, 'promote', { version: v.version }),
      },
      'Promote',
    );
    const tryButton = h(
      'button',
      {
        type: 'button',
        class: 'try',
        disabled: m === undefined,
        onclick: () => tryIt.choose(v.version),
      },
      'Try',
    );
    if (m === undefined) {
      return h(
        'tr',
        { 'data-version': v.version },
        h('td', {}, `v${v.version}`),
        h('td', {}, v.labels.join(', ')),
        h('td', { colspan: 6, class: 'error-inline' }, v.error ?? 'unreadable manifest'),
        h('td', {}, promote),
      );
    }
    return h(
      'tr',
      { 'data-version': v.version },
      h('td', {}, `v${v.version}`),
      h(
        'td',
        {},
        v.labels.map((l) => h('span', { class: `tag tag-${l.replace(/\s+/g, '-')}` }, l)),
      ),
      h('td', {}, m.served),
      h('td', {}, fmtBytes(m.variants.fp32.bytes)),
      h('td', {}, fmtBytes(m.variants.int8?.bytes)),
      h(
        'td',
        { class: 'quant' },
        q === undefined
          ? '–'
          : [
              `${q.scheme}: ${q.status}`,
              h(
                'div',
                { class: 'detail' },
                `size ${fmtRatio(q.sizeRatio)} · latency ${fmtRatio(q.latencyRatio)}${q.accuracy === undefined ? '' : ` · cosine ${q.accuracy.cosine.toFixed(5)} · max abs ${q.accuracy.maxAbsError.toExponential(2)}`}`,
              ),
              h(
                'div',
                { class: 'detail' },
                `${q.nodesQuantized} nodes quantized, ${q.nodesSkipped} skipped${q.decision === undefined ? '' : ` · ${q.decision}`}`,
              ),
            ],
      ),
      h(
        'td',
        { class: 'sig' },
        h('div', {}, 'in: ', m.inputs.map(tensorText).join('; ')),
        h('div', {}, 'out: ', m.outputs.map(tensorText).join('; ')),
      ),
      h(
        'td',
        {},
        m.warmup === undefined
          ? '–'
          : `p50 ${fmtMs(m.warmup.p50Ms)} (${m.warmup.samples} samples), load ${fmtMs(m.warmup.loadMs)}`,
      ),
      h('td', { class: 'buttons' }, promote, tryButton),
    );
  };

  const refreshModel = async (schedule = true) => {
    try {
      const m = await api<ModelResponse>(base);
      const fingerprint = JSON.stringify(m);
      replace(status, statusBadge(m.status, m.statusDetail));
      replace(statusDetail, m.statusDetail ?? '');
      if (fingerprint !== lastModel) {
        lastModel = fingerprint;
        replace(
          problems,
          m.problems.length === 0
            ? null
            : h(
                'div',
                { class: 'warning' },
                h('p', {}, 'Parts of this model cannot be read:'),
                h(
                  'ul',
                  {},
                  m.problems.map((p) => h('li', {}, p)),
                ),
              ),
        );
        renderAliases(m);
        replace(
          versionsBody,
          m.versions.length === 0
            ? h(
                'tr',
                {},
                h(
                  'td',
                  { colspan: 9, class: 'muted', id: 'no-versions' },
                  'No registered version: every upload of this model so far was rejected (see the history below for why).',
                ),
              )
            : [...m.versions].reverse().map(versionRow),
        );
      }
      // every answer, not only a changed one: the card retries an example an outage cost it
      tryIt.setVersions(
        m.versions.filter((v) => v.manifest !== undefined).map((v) => v.version),
        m.aliases?.production,
      );
      const bake = aliasesBox.querySelector('#bake-left');
      const until = m.aliases?.candidate?.bakeUntil;
      if (bake !== null && until !== undefined) {
        const left = Date.parse(until) - Date.now();
        bake.textContent =
          left > 0 ? `bakes ${fmtDuration(left)} more` : 'baked: promotes when its alarms are OK';
      }
      element.dataset.ready = 'true';
    } catch (err) {
      replace(problems, errorBox(err));
      // neither keep showing the last status as current, nor keep this error once the model answers
      // again: the next answer re-renders even when it is the same as before the outage
      replace(status, statusBadge('unknown', 'the console could not read this model just now'));
      lastModel = '';
    }
    if (schedule) later('model', () => void refreshModel(), MODEL_REFRESH_MS);
  };

  const refreshMetrics = async () => {
    try {
      const metrics = await api<MetricsResponse>(`${base}/metrics`);
      charts.update(metrics);
      const requests = metrics.versions.reduce(
        (t, s) => t + s.requests.reduce((a, b) => a + b, 0),
        0,
      );
      chartsNote.dataset.requests = String(requests);
      replace(
        chartsNote,
        metrics.error !== undefined
          ? h('span', { class: 'warning' }, metrics.error)
          : `${requests} requests in the last ${fmtDuration(metrics.end - metrics.start)} (steps of ${fmtDuration(metrics.stepMs)}); dashed red: the guard's alarm thresholds`,
      );
    } catch (err) {
      replace(chartsNote, errorBox(err));
    }
    later('metrics', () => void refreshMetrics(), METRICS_REFRESH_MS);
  };

  const refreshHistory = async () => {
    try {
      const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
      if (historyBefore !== undefined) query.set('before', historyBefore);
      const page = await api<HistoryPage>(`${base}/history?${query}`);
      historyNext = page.nextBefore;
      olderButton.hidden = historyNext === undefined;
      newestButton.hidden = historyBefore === undefined;
      replace(
        historyInfo,
        `${page.total} record${page.total === 1 ? '' : 's'}${page.total > HISTORY_PAGE ? `, ${HISTORY_PAGE} per page, newest first` : ', newest first'}`,
      );
      replace(
        historyList,
        page.entries.map((entry) =>
          h(
            'li',
            {
              class: `event-${entry.record?.event ?? 'unreadable'}`,
              'data-event': entry.record?.event ?? 'unreadable',
            },
            h(
              'span',
              { class: 'when' },
              entry.record === undefined ? '' : fmtTime(entry.record.at),
            ),
            h(
              'span',
              { class: 'what' },
              entry.record === undefined
                ? 'unreadable'
                : `${entry.record.event}${entry.record.version === undefined ? '' : ` v${entry.record.version}`}`,
            ),
            h('span', { class: 'who' }, entry.record?.actor ?? ''),
            h('div', { class: 'why' }, describeRecord(entry)),
          ),
        ),
      );
    } catch (err) {
      replace(historyList, h('li', {}, errorBox(err)));
    }
  };
  // only the newest page follows along; an older page stays still while it is read
  const followHistory = async () => {
    if (historyBefore === undefined) await refreshHistory();
    later('history', () => void followHistory(), MODEL_REFRESH_MS);
  };
  olderButton.addEventListener('click', () => {
    historyBefore = historyNext;
    void refreshHistory();
  });
  newestButton.addEventListener('click', () => {
    historyBefore = undefined;
    void refreshHistory();
  });

  void refreshModel();
  void refreshMetrics();
  void followHistory();
  return {
    element,
    stop: () => {
      stopped = true;
      for (const t of timers.values()) clearTimeout(t);
      charts.destroy();
    },
  };
}
