import type { ExampleResponse, InferResponse } from '../types.ts';
import { api } from './api.ts';
import { attributionView } from './attributions.ts';
import { errorBox, fmtMs, h, replace } from './dom.ts';

/**
 * A V2 request built from a version's signature, pre-filled with a valid example (the samples
 * ingest warmed the version up on, else values made for its inputs), sent through the HTTP API.
 */
export function tryItCard(name: string): {
  element: HTMLElement;
  setVersions(versions: number[], production?: number): void;
  choose(version: number): void;
} {
  const base = `/api/models/${encodeURIComponent(name)}`;
  const select = h('select', { id: 'try-version' });
  const body = h('textarea', { id: 'try-body', rows: 8, spellcheck: false });
  const source = h('p', { class: 'muted', id: 'try-source' });
  const result = h('div', { id: 'try-result', 'aria-live': 'polite' });
  const send = h('button', { type: 'submit', id: 'try-send' }, 'Send');
  const explain = h('button', { type: 'button', id: 'try-explain' }, 'Explain');
  let known = '';
  /** the last example could not be read: the next model refresh that succeeds tries again */
  let loadFailed = false;

  const load = async (version: string) => {
    try {
      const example = await api<ExampleResponse>(
        `${base}/example${version === '' ? '' : `?version=${version}`}`,
      );
      body.value = example.body;
      loadFailed = false;
      replace(
        source,
        example.from === 'samples'
          ? `Example from the samples v${example.version} was warmed up on.`
          : `Example made from the signature of v${example.version} (no samples were uploaded).`,
      );
    } catch (err) {
      loadFailed = true;
      replace(source, errorBox(err));
    }
  };
  select.addEventListener('change', () => void load(select.value));

  const submit = async (event: Event, action: 'infer' | 'explain' = 'infer') => {
    event.preventDefault();
    send.disabled = true;
    explain.disabled = true;
    replace(result, action === 'explain' ? 'explaining…' : 'sending…');
    try {
      const query = select.value === '' ? '' : `?version=${select.value}`;
      const answer = await api<InferResponse>(`${base}/${action}${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body.value,
      });
      const ok = answer.status < 400;
      replace(
        result,
        h(
          'p',
          { class: ok ? 'ok' : 'error', 'data-status': answer.status },
          `${answer.status} in ${fmtMs(answer.latencyMs)}`,
          answer.version === undefined ? '' : ` · answered by v${answer.version}`,
          answer.variant === undefined ? '' : ` (${answer.variant})`,
        ),
        ok && action === 'explain' ? attributionView(answer.body) : '',
        h('pre', { class: 'output' }, JSON.stringify(answer.body, null, 2)),
      );
    } catch (err) {
      replace(result, errorBox(err));
    } finally {
      send.disabled = false;
      explain.disabled = false;
    }
  };
  explain.addEventListener('click', (event) => void submit(event, 'explain'));

  const element = h(
    'form',
    { class: 'card try-it', id: 'try-it', onsubmit: submit as EventListener },
    h('h2', {}, 'Try it'),
    h('label', {}, 'Version ', select),
    source,
    h('label', { class: 'block' }, 'Request body (Open Inference Protocol V2)', body),
    h('div', { class: 'row' }, send, explain),
    result,
  );

  return {
    element,
    setVersions(versions, production) {
      const key = `${versions.join(',')}|${production}`;
      if (key === known) {
        // an example lost to an outage is fetched again once the model answers, not left as an error
        if (loadFailed && versions.length > 0) void load(select.value);
        return;
      }
      const first = known === '';
      known = key;
      const current = select.value;
      replace(
        select,
        h('option', { value: '' }, 'routed (production, or the candidate at its weight)'),
        [...versions]
          .reverse()
          .map((v) => h('option', { value: v }, `v${v}${v === production ? ' (production)' : ''}`)),
      );
      if (versions.map(String).includes(current)) select.value = current;
      if ((first || loadFailed) && versions.length > 0) void load(first ? '' : select.value);
    },
    choose(version) {
      select.value = String(version);
      void load(String(version));
      element.scrollIntoView({ behavior: 'smooth', block: 'start' });
    },
  };
}
