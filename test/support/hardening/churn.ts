import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promoteVersion, rollbackTo } from '../../../src/guard/index.ts';
import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  valueInfo,
} from '../../../src/onnx/index.ts';
import { type Aliases, Registry } from '../../../src/registry/index.ts';
import { ModelRuntime, type RegistryReader } from '../../../src/runtime/index.ts';
import { createPredictApp } from '../../../src/serve/index.ts';
import { gaussian, mulberry32 } from '../../../src/util/index.ts';
import { startTestS3 } from '../local-s3.ts';
import { registerVersion } from '../registry.ts';

export interface ChurnOptions {
  /** alias changes to make */
  transitions: number;
  /** versions of the model the changes move between */
  versions: number;
  /** the serving runtime's alias TTL */
  aliasTtlMs: number;
  /** hidden units of the model: its weights are 2 × 4 × `hidden` floats */
  hidden: number;
  /** the session cache bound, in models: a few, so churn keeps evicting and reloading */
  cachedModels: number;
  /** client loops sending requests while the aliases change */
  clients: number;
  /** seed of the transitions chosen */
  seed: number;
}

interface AliasState {
  /** when the write that set these aliases started and finished (ms, performance clock) */
  start: number;
  end: number;
  production?: number;
  candidate?: number;
}

interface Served {
  start: number;
  end: number;
  status: number;
  version?: number;
  variant?: string;
}

export interface ChurnReport {
  transitions: number;
  durationMs: number;
  requests: number;
  statuses: Record<string, number>;
  byVariant: Record<string, number>;
  /** responses served by a version that held no such role in its window */
  outOfWindow: { version: number; variant: string; allowed: number[]; start: number }[];
  /** longest read of aliases.json: a value read is trusted for TTL from the end of its read */
  maxAliasReadMs: number;
  modelBytes: number;
  sessionCacheBytes: number;
  loads: number;
  evictions: number;
  maxLiveSessions: number;
  liveSessionsAtEnd: number;
  rss: {
    warmMb: number;
    endMb: number;
    peakMb: number;
    growthMb: number;
    /** of which the JS heap (the rest is native: onnxruntime, buffers) */
    heapGrowthMb: number;
    growthPct: number;
  };
}

/**
 * y = (x · W1) · W2 over FP32 [batch, 4], W1 [4, hidden] and W2 [hidden, 4] random: a model whose
 * weights survive onnxruntime's optimizer, so each live session really holds them.
 */
export const churnModel = (hidden: number, seed: number): Uint8Array => {
  const normal = gaussian(mulberry32(seed));
  const weights = (n: number) => Array.from({ length: n }, () => normal() * 0.05);
  return encodeModel(
    model({
      graph: graph({
        name: 'churn',
        nodes: [node('MatMul', ['x', 'w1'], ['h']), node('MatMul', ['h', 'w2'], ['y'])],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
        outputs: [valueInfo('y', T.FLOAT, ['batch', 4])],
        initializers: [
          tensor('w1', T.FLOAT, [4, hidden], weights(4 * hidden)),
          tensor('w2', T.FLOAT, [hidden, 4], weights(4 * hidden)),
        ],
      }),
      opset: 17,
      producer: 'hardening-churn',
    }),
  );
};

const MiB = 1024 * 1024;
const MODEL = 'churn';
const rssMb = () => process.memoryUsage.rss() / MiB;

/** Times alias reads: how stale a value the runtime trusts can be is TTL plus one read. */
const timedReader = (registry: Registry, onRead: (ms: number) => void): RegistryReader => {
  const timed =
    <A extends unknown[], R>(read: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const started = performance.now();
      try {
        return await read(...args);
      } finally {
        onRead(performance.now() - started);
      }
    };
  return {
    listModels: () => registry.listModels(),
    listVersions: (m) => registry.listVersions(m),
    getManifest: (m, v) => registry.getManifest(m, v),
    getAliases: timed((m: string) => registry.getAliases(m)),
    getAliasesIfChanged: timed((m: string, etag: string) => registry.getAliasesIfChanged(m, etag)),
  };
};

/**
 * Promotions, rollbacks and canary changes (through the guard's own functions and the registry)
 * while clients predict through the protocol app over the runtime and the local S3. Every answer
 * is checked against the timeline of alias changes: a request that started at `t` may be served
 * by the production (or candidate) of any alias state visible in [t − TTL − longest alias read,
 * end of the request]. RSS is sampled throughout; the session cache bound is a few models.
 */
export async function runChurn(options: ChurnOptions): Promise<ChurnReport> {
  const s3 = await startTestS3();
  const tmp = await mkdtemp(join(tmpdir(), 'maas-churn-'));
  const registry = new Registry(s3.store);
  let modelBytes = 0;
  for (let v = 1; v <= options.versions; v++) {
    const bytes = churnModel(options.hidden, v);
    modelBytes = bytes.byteLength;
    await registerVersion(registry, MODEL, bytes);
  }
  await promoteVersion(registry, MODEL, 1, { actor: 'churn' });

  let loads = 0;
  let evictions = 0;
  let maxAliasReadMs = 0;
  const sessionCacheBytes = Math.floor(modelBytes * (options.cachedModels + 0.5));
  const runtime = new ModelRuntime({
    registry: timedReader(registry, (ms) => {
      maxAliasReadMs = Math.max(maxAliasReadMs, ms);
    }),
    store: s3.store,
    aliasTtlMs: options.aliasTtlMs,
    sessionCacheBytes,
    tmpCacheDir: tmp,
    intraOpThreads: 1,
    hooks: {
      onModelLoad: () => {
        loads += 1;
      },
      onModelEvict: () => {
        evictions += 1;
      },
    },
  });
  const app = createPredictApp({ provider: runtime });
  const body = new TextEncoder().encode(
    JSON.stringify({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] }],
    }),
  );
  const predict = async (path: string): Promise<Served> => {
    const start = performance.now();
    const res = await app({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      query: {},
      body,
      requestId: 'churn',
    });
    const version = res.headers['x-maas-model-version'];
    return {
      start,
      end: performance.now(),
      status: res.status,
      ...(version === undefined ? {} : { version: Number(version) }),
      ...(res.headers['x-maas-variant'] === undefined
        ? {}
        : { variant: res.headers['x-maas-variant'] }),
    };
  };

  // Warm-up: every version loaded once, so RSS afterwards includes onnxruntime's own start-up.
  for (let v = 1; v <= options.versions; v++)
    await predict(`/v2/models/${MODEL}/versions/${v}/infer`);
  const warmMb = rssMb();
  const heapWarmMb = process.memoryUsage().heapUsed / MiB;
  let peakMb = warmMb;
  let maxLiveSessions = runtime.loadedModels().length;
  const sampler = setInterval(() => {
    peakMb = Math.max(peakMb, rssMb());
    maxLiveSessions = Math.max(maxLiveSessions, runtime.loadedModels().length);
  }, 25);

  const setAt = performance.now();
  const timeline: AliasState[] = [{ start: setAt, end: setAt, production: 1 }];
  const outOfWindow: ChurnReport['outOfWindow'] = [];
  const statuses: Record<string, number> = {};
  const byVariant: Record<string, number> = {};
  let requests = 0;
  const check = (s: Served): void => {
    requests += 1;
    statuses[s.status] = (statuses[s.status] ?? 0) + 1;
    if (s.version === undefined || s.variant === undefined) return;
    byVariant[s.variant] = (byVariant[s.variant] ?? 0) + 1;
    const from = s.start - options.aliasTtlMs - (maxAliasReadMs + 1);
    const allowed = new Set<number>();
    // a state is visible from the start of its write until the next write has finished
    for (let i = timeline.length - 1; i >= 0; i--) {
      const state = timeline[i];
      const until = timeline[i + 1]?.end ?? Number.POSITIVE_INFINITY;
      if (state === undefined || until < from) break;
      if (state.start > s.end) continue;
      const role = s.variant === 'candidate' ? state.candidate : state.production;
      if (role !== undefined) allowed.add(role);
    }
    if (!allowed.has(s.version)) {
      outOfWindow.push({
        version: s.version,
        variant: s.variant,
        allowed: [...allowed].sort(),
        start: s.start,
      });
    }
  };
  // Answers are checked as soon as every state they could have seen is known, so the run keeps
  // only a few in memory and its RSS is the server's, not a growing log of answers.
  let pending: Served[] = [];
  const checkEndedBefore = (time: number): void => {
    const later: Served[] = [];
    for (const s of pending) {
      if (s.end < time) check(s);
      else later.push(s);
    }
    pending = later;
  };
  let churning = true;
  const clients = Array.from({ length: options.clients }, async () => {
    while (churning) pending.push(await predict(`/v2/models/${MODEL}/infer`));
  });

  const random = mulberry32(options.seed);
  const pick = (exclude?: number) => {
    for (;;) {
      const v = 1 + Math.floor(random() * options.versions);
      if (v !== exclude) return v;
    }
  };
  const started = performance.now();
  let current: Aliases | undefined;
  for (let i = 0; i < options.transitions; i++) {
    const start = performance.now();
    const r = random();
    const production = current?.production ?? 1;
    if (r < 0.35) {
      current = (await promoteVersion(registry, MODEL, pick(production), { actor: 'churn' }))
        .aliases;
    } else if (r < 0.6) {
      current = (await rollbackTo(registry, MODEL, pick(production), { actor: 'churn' })).aliases;
    } else if (r < 0.85) {
      const version = pick(production);
      current = (
        await registry.updateAliases(MODEL, (stored) =>
          stored === undefined || stored.production === version
            ? undefined
            : {
                ...stored,
                candidate: {
                  version,
                  weight: 0.5,
                  bakeUntil: new Date(Date.now() + 3_600_000).toISOString(),
                },
              },
        )
      ).aliases;
    } else {
      current = (
        await registry.updateAliases(MODEL, (stored) => {
          if (stored?.candidate === undefined) return undefined;
          const { candidate: _dropped, ...rest } = stored;
          return rest;
        })
      ).aliases;
    }
    timeline.push({
      start,
      end: performance.now(),
      ...(current?.production === undefined ? {} : { production: current.production }),
      ...(current?.candidate === undefined ? {} : { candidate: current.candidate.version }),
    });
    checkEndedBefore(start);
    // states last from nothing to a few TTLs, so some windows hold one state and some several
    await sleep(random() * options.aliasTtlMs * 2);
  }
  const durationMs = performance.now() - started;
  churning = false;
  await Promise.all(clients);
  clearInterval(sampler);
  const endMb = rssMb();
  const heapEndMb = process.memoryUsage().heapUsed / MiB;
  const liveSessionsAtEnd = runtime.loadedModels().length;
  const counted = { loads, evictions };
  await runtime.close();
  await s3.cleanup();
  await rm(tmp, { recursive: true, force: true });

  checkEndedBefore(Number.POSITIVE_INFINITY);
  return {
    transitions: options.transitions,
    durationMs,
    requests,
    statuses,
    byVariant,
    outOfWindow,
    maxAliasReadMs,
    modelBytes,
    sessionCacheBytes,
    ...counted,
    maxLiveSessions,
    liveSessionsAtEnd,
    rss: {
      warmMb,
      endMb,
      peakMb,
      growthMb: endMb - warmMb,
      heapGrowthMb: heapEndMb - heapWarmMb,
      growthPct: ((endMb - warmMb) / warmMb) * 100,
    },
  };
}
