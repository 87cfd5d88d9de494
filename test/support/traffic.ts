import { setTimeout as sleep } from 'node:timers/promises';
import { inferBody, trafficRow } from '../../local/guard/demo-models.ts';
import type { Registry } from '../../src/registry/index.ts';

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
 * Steady traffic on `model` (v1 production, v2 a candidate the guard should roll back) until v2
 * is rolled back and every answer comes from v1 again, then 40 requests more: what the clients
 * saw during the episode and after it.
 */
export async function trafficUntilRollback(options: {
  url: string;
  model: string;
  registry: Pick<Registry, 'getAliases'>;
  random: () => number;
}): Promise<{ during: readonly Served[]; after: Served[] }> {
  const { url, model, registry, random } = options;
  const traffic = steadyTraffic({
    url,
    model,
    // enough routed requests for a 10 % canary to reach the rules' minimum per period even when
    // the shared machine slows every request down
    clients: 6,
    pauseMs: 30,
    row: () => trafficRow(random),
  });
  try {
    await waitFor(
      `the guard to roll back ${model} v2`,
      async () => (await registry.getAliases(model))?.aliases.rolledBack.includes(2) ?? false,
      // generous: the machine is shared, and a slow period only delays the outcome
      120_000,
    );
    // Every instance re-reads aliases.json once its alias TTL (200 ms) has passed since the
    // rollback: after five TTLs, no instance can still route to v2.
    const settled = Date.now() + 1_000;
    await waitFor(
      'answers from v1 only',
      () =>
        Date.now() > settled &&
        traffic.served.length > 30 &&
        traffic.served.slice(-30).every((s) => s.version === 1),
      10_000,
    );
  } finally {
    await traffic.stop();
  }
  const during: readonly Served[] = [...traffic.served];
  const after = await Promise.all(
    Array.from({ length: 40 }, () => send(url, model, trafficRow(random))),
  );
  return { during, after };
}

/**
 * How many of `n` requests a canary at `weight` may receive: the binomial mean plus four
 * standard deviations (a bound broken by chance less than once in 30 000 runs).
 */
export const canaryBound = (n: number, weight: number): number =>
  Math.ceil(n * weight + 4 * Math.sqrt(n * weight * (1 - weight))) + 1;
