import type { OutcomeResponse, UploadResponse } from '../types.ts';
import { api, putWithProgress } from './api.ts';
import { errorBox, fmtBytes, h, replace } from './dom.ts';

const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const OUTCOME_POLL_MS = 1000;
const OUTCOME_TIMEOUT_MS = 10 * 60_000;

/**
 * Upload a model as `maas push` does: samples first, then the `.onnx` with the per-upload options
 * as metadata; then wait for ingest's outcome (registered with its version, or rejected with the
 * reason).
 */
export function uploadCard(): HTMLElement {
  let model: File | undefined;
  let samples: File | undefined;
  const name = h('input', {
    id: 'upload-model',
    name: 'model',
    placeholder: 'model name, e.g. mymodel',
    autocomplete: 'off',
    pattern: MODEL_NAME.source,
  });
  const files = h('input', {
    id: 'upload-files',
    type: 'file',
    multiple: true,
    accept: '.onnx,.json',
  });
  const chosen = h('p', { class: 'muted', id: 'upload-chosen' }, 'No file chosen.');
  const quantize = h(
    'select',
    { id: 'upload-quantize' },
    h('option', { value: 'on' }, 'quantize to int8 when it passes the gate'),
    h('option', { value: 'off' }, 'serve as uploaded (no int8)'),
  );
  const promote = h(
    'select',
    { id: 'upload-promote' },
    h('option', { value: '' }, 'default (first version: production; later: canary)'),
    h('option', { value: 'canary' }, 'canary'),
    h('option', { value: 'now' }, 'production now'),
    h('option', { value: 'manual' }, 'manual (not routed)'),
  );
  const weight = h('input', {
    id: 'upload-weight',
    type: 'number',
    min: 0,
    max: 1,
    step: 0.05,
    value: '0.1',
  });
  const bar = h('progress', { id: 'upload-progress', max: 1, value: 0, hidden: true });
  const status = h('div', { id: 'upload-status', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', id: 'upload-submit' }, 'Upload');

  const take = (list: FileList | null) => {
    for (const file of Array.from(list ?? [])) {
      if (file.name.endsWith('.onnx')) model = file;
      else if (file.name.endsWith('.json')) samples = file;
    }
    if (model !== undefined && name.value.trim() === '') {
      name.value = model.name
        .replace(/\.onnx$/, '')
        .toLowerCase()
        .replace(/[^a-z0-9._-]/g, '-');
    }
    replace(
      chosen,
      model === undefined
        ? 'Choose or drop a .onnx file (and optionally its samples .json).'
        : `${model.name} (${fmtBytes(model.size)})`,
      samples === undefined ? '' : ` with samples ${samples.name}`,
    );
  };
  files.addEventListener('change', () => take(files.files));

  const drop = h(
    'label',
    { class: 'drop', for: 'upload-files' },
    h('strong', {}, 'Drop a .onnx file here'),
    ' (plus an optional samples .json), or click to choose.',
  );
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    take(event.dataTransfer?.files ?? null);
  });

  const submit = async (event: Event) => {
    event.preventDefault();
    const modelName = name.value.trim();
    if (model === undefined) {
      replace(
        status,
        errorBox(new Error('choose a .onnx file first (drop it on the box or click it)')),
      );
      return;
    }
    if (!MODEL_NAME.test(modelName)) {
      replace(
        status,
        errorBox(
          new Error(
            `"${modelName}" is not a model name: use 1 to 63 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or a digit`,
          ),
        ),
      );
      return;
    }
    if (
      !confirm(`Upload ${model.name} (${fmtBytes(model.size)}) as a new version of "${modelName}"?`)
    )
      return;
    const file = model;
    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    try {
      const base = `/api/models/${encodeURIComponent(modelName)}`;
      const fileParam = `file=${encodeURIComponent(file.name)}`;
      if (samples !== undefined) {
        replace(status, `uploading samples ${samples.name}…`);
        await api(`${base}/samples?${fileParam}`, { method: 'PUT', body: await samples.text() });
      }
      replace(status, `uploading ${file.name}…`);
      const query = new URLSearchParams({ file: file.name, quantize: quantize.value });
      if (promote.value !== '') query.set('promote', promote.value);
      if (promote.value === 'canary' || promote.value === '') query.set('weight', weight.value);
      const uploaded = await putWithProgress<UploadResponse>(
        `${base}/upload?${query}`,
        file,
        (loaded, total) => {
          bar.value = total > 0 ? loaded / total : 0;
        },
      );
      bar.value = 1;
      replace(status, `uploaded to ${uploaded.key}; ingest is validating and registering it…`);
      const outcome = await waitForOutcome(base, uploaded);
      if (outcome.event === 'rejected') {
        replace(
          status,
          h(
            'p',
            { class: 'error', 'data-outcome': 'rejected' },
            `rejected: ${outcome.reason ?? 'no reason recorded'}`,
          ),
        );
      } else {
        const served = outcome.details?.served;
        replace(
          status,
          h(
            'p',
            { class: 'ok', 'data-outcome': 'registered' },
            `registered ${modelName} v${outcome.version ?? '?'}${typeof served === 'string' ? `, serves ${served}` : ''} `,
            h('a', { href: `#/models/${encodeURIComponent(modelName)}` }, 'open it'),
          ),
        );
      }
    } catch (err) {
      replace(status, errorBox(err));
    } finally {
      button.disabled = false;
    }
  };

  return h(
    'form',
    { class: 'card upload', id: 'upload', onsubmit: submit as EventListener },
    h('h2', {}, 'Upload a model'),
    drop,
    files,
    chosen,
    h(
      'div',
      { class: 'row' },
      h('label', {}, 'Model ', name),
      h('label', {}, 'Quantize ', quantize),
    ),
    h(
      'div',
      { class: 'row' },
      h('label', {}, 'Promote ', promote),
      h('label', {}, 'Canary weight ', weight),
    ),
    h('div', { class: 'row' }, button, bar),
    status,
  );
}

async function waitForOutcome(base: string, uploaded: UploadResponse) {
  const query = new URLSearchParams({ key: uploaded.key, etag: uploaded.etag });
  if (uploaded.afterKey !== undefined) query.set('afterKey', uploaded.afterKey);
  if (uploaded.sinceMs !== undefined) query.set('sinceMs', String(uploaded.sinceMs));
  const deadline = Date.now() + OUTCOME_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const { outcome } = await api<OutcomeResponse>(`${base}/outcome?${query}`);
    if (outcome !== undefined) return outcome;
    await new Promise((resolve) => setTimeout(resolve, OUTCOME_POLL_MS));
  }
  throw new Error(
    `no registration or rejection of ${uploaded.key} after ${OUTCOME_TIMEOUT_MS / 60_000} minutes: is ingest running?`,
  );
}
