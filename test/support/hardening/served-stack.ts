import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalApi } from '../../../local/http/index.ts';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION, startLocalS3 } from '../../../local/s3/index.ts';
import { ensureExampleModels } from '../../../models/generate.ts';
import { Registry } from '../../../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../../../src/storage/s3.ts';
import { s3Env } from '../local-s3.ts';
import { registerVersion, setAliases } from '../registry.ts';

/**
 * The local stack serving the example Iris model, in a child process so that a load generator
 * in the parent does not share its event loop: the local S3 and the local HTTP API
 * (`startLocalApi`: payload 2.0 events, handler instances in child processes, queue and 429s) with
 * the real predict handler. For bench/load.ts and bench/soak.ts.
 */
export interface ServedStackOptions {
  /** handler instances; @default the local config's (one per core) */
  workers?: number;
  /** requests waiting for an instance before 429; @default the local config's (64) */
  queueLimit?: number;
  /** request body bytes held at once across connections; @default the local config's */
  maxBodyBytesInFlight?: number;
}

export interface ServedStack {
  url: string;
  /** the V2 request bodies of the Iris samples */
  samples: string[];
  /** resident memory of the serving process and its children (S3, API, every handler instance), MiB */
  rssMb(): Promise<number>;
  close(): Promise<void>;
}

type FromChild = { type: 'ready'; url: string } | { type: 'rss'; mb: number };

const HERE = fileURLToPath(import.meta.url);

const irisSamples = async (): Promise<string[]> => {
  const { iris } = await ensureExampleModels();
  const samples = JSON.parse(await readFile(iris.samplesPath, 'utf8')) as unknown[];
  return samples.map((s) => JSON.stringify(s));
};

export async function startServedStack(options: ServedStackOptions = {}): Promise<ServedStack> {
  const samples = await irisSamples();
  const child: ChildProcess = fork(HERE, ['--serve', JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiters: { resolve: (message: FromChild) => void; reject: (err: Error) => void }[] = [];
  child.on('message', (message: FromChild) => waiters.shift()?.resolve(message));
  child.once('exit', (code) => {
    for (const waiter of waiters.splice(0)) {
      waiter.reject(new Error(`the served stack exited (${code})`));
    }
  });
  const next = () =>
    new Promise<FromChild>((resolve, reject) => {
      waiters.push({ resolve, reject });
    });
  const ready = await next();
  if (ready.type !== 'ready') throw new Error('the served stack did not start');
  return {
    url: ready.url,
    samples,
    async rssMb() {
      const answer = next();
      child.send('rss');
      const message = await answer;
      return message.type === 'rss' ? message.mb : Number.NaN;
    },
    async close() {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send('close');
      await exited;
    },
  };
}

/**
 * RSS of `pid` and every process under it (the handler instances are child processes), from
 * /proc; outside Linux, this process's own.
 */
async function treeRssBytes(pid: number): Promise<number> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return process.memoryUsage.rss();
  }
  const parents = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = await readFile(`/proc/${entry}/status`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
      const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      parents.set(Number(entry), ppid);
      rss.set(Number(entry), kb * 1024);
    } catch {
      // the process ended while we looked
    }
  }
  const inTree = (p: number): boolean => {
    for (let at: number | undefined = p; at !== undefined && at > 1; at = parents.get(at)) {
      if (at === pid) return true;
    }
    return false;
  };
  let total = 0;
  for (const [p, bytes] of rss) if (inTree(p)) total += bytes;
  return total;
}

/** The child: local S3 over a temporary directory, Iris registered as version 1, the local API. */
async function serve(options: ServedStackOptions): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), 'maas-served-'));
  const s3 = await startLocalS3({ port: 0, directory: join(home, 's3'), bucket: 'maas-models' });
  const client = createS3Client({
    endpoint: s3.endpoint,
    region: LOCAL_S3_REGION,
    credentials: LOCAL_S3_CREDENTIALS,
  });
  const registry = new Registry(new S3ObjectStore({ bucket: s3.bucket, client }));
  const { iris } = await ensureExampleModels();
  await registerVersion(registry, 'iris', new Uint8Array(await readFile(iris.path)));
  await setAliases(registry, 'iris', { production: 1 });
  const api = await startLocalApi({
    port: 0,
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    ...(options.queueLimit === undefined ? {} : { queueLimit: options.queueLimit }),
    ...(options.maxBodyBytesInFlight === undefined
      ? {}
      : { maxBodyBytesInFlight: options.maxBodyBytesInFlight }),
    env: {
      ...s3Env(s3),
      MAAS_TMP_CACHE_DIR: join(home, 'cache'),
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    },
    onOutput: () => undefined,
  });
  process.on('message', (message: string) => {
    if (message === 'rss') {
      void treeRssBytes(process.pid).then((bytes) =>
        process.send?.({ type: 'rss', mb: bytes / (1024 * 1024) }),
      );
      return;
    }
    void (async () => {
      await api.close();
      client.destroy();
      await s3.close();
      await rm(home, { recursive: true, force: true });
      process.exit(0);
    })();
  });
  process.send?.({ type: 'ready', url: api.url });
}

if (process.argv[2] === '--serve') await serve(JSON.parse(process.argv[3] ?? '{}'));
