import { setTimeout as sleep } from 'node:timers/promises';
import { inferBody } from '../../../local/guard/demo-models.ts';

/** One request of the steady traffic, as its client saw it. */
export interface Served {
  status: number;
  /** `x-maas-model-version` */
  version?: number;
  /** `x-maas-variant` */
  variant?: string;
}

export interface Traffic {
  /** every answer so far, in order */
  readonly served: readonly Served[];
  stop(): Promise<void>;
}

/**
 * Steady traffic on a model's unpinned infer route: `clients` loops each sending one request,
 * reading the answer and pausing `pauseMs`, until stopped.
 */
export function steadyTraffic(options: {
  url: string;
  model: string;
  clients: number;
  pauseMs: number;
  row: () => number[];
}): Traffic {
  const served: Served[] = [];
  let running = true;
  const client = async (): Promise<void> => {
    while (running) {
      served.push(await send(options.url, options.model, options.row()));
      await sleep(options.pauseMs);
    }
  };
  const clients = Array.from({ length: options.clients }, client);
  return {
    served,
    async stop() {
      running = false;
      await Promise.all(clients);
    },
  };
}

export async function send(url: string, model: string, row: readonly number[]): Promise<Served> {
  const res = await fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: inferBody(row),
  });
  await res.arrayBuffer();
  const version = res.headers.get('x-maas-model-version');
  const variant = res.headers.get('x-maas-variant');
  return {
    status: res.status,
    ...(version === null ? {} : { version: Number(version) }),
    ...(variant === null ? {} : { variant }),
  };
}

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * How many of `n` requests a canary at `weight` may receive: the binomial mean plus four
 * standard deviations (a bound broken by chance less than once in 30 000 runs).
 */
export const canaryBound = (n: number, weight: number): number =>
  Math.ceil(n * weight + 4 * Math.sqrt(n * weight * (1 - weight))) + 1;
