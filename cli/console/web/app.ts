import './style.css';
import type { TargetInfo } from '../types.ts';
import { api } from './api.ts';
import { errorBox, h, type Page, replace } from './dom.ts';
import { modelPage } from './model-page.ts';
import { modelsPage } from './models-page.ts';

let current: Page | undefined;

function route(): void {
  const root = document.getElementById('app');
  if (root === null) return;
  current?.stop();
  current = undefined;
  const hash = decodeURIComponent(location.hash.replace(/^#/, ''));
  const model = /^\/models\/([^/]+)$/.exec(hash)?.[1];
  try {
    current = model === undefined ? modelsPage() : modelPage(model);
    replace(root, current.element);
  } catch (err) {
    replace(root, errorBox(err));
  }
  window.scrollTo(0, 0);
}

async function showTarget(): Promise<void> {
  const box = document.getElementById('target');
  if (box === null) return;
  try {
    const info = await api<TargetInfo>('/api/info');
    replace(
      box,
      info.kind === 'local'
        ? `local stack · API ${info.api} · bucket ${info.bucket}`
        : `stack ${info.stackName ?? ''} · ${info.api} · bucket ${info.bucket} · figures from CloudWatch`,
    );
  } catch (err) {
    replace(box, h('span', { class: 'error-inline' }, (err as Error).message));
  }
}

/** Any error nothing else caught still ends up on the page, never as a blank one. */
function showUncaught(message: string): void {
  const root = document.getElementById('app');
  if (root === null) return;
  root.prepend(
    h(
      'p',
      { class: 'error', role: 'alert' },
      `The page hit an error: ${message}. Reload to start again.`,
    ),
  );
}

(window as unknown as { __maasConsole: boolean }).__maasConsole = true;
window.addEventListener('error', (event) => showUncaught(event.message));
window.addEventListener('unhandledrejection', (event) =>
  showUncaught(event.reason instanceof Error ? event.reason.message : String(event.reason)),
);
window.addEventListener('hashchange', route);
void showTarget();
route();
