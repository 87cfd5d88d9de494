/**
 * Predict benchmarks: the four ratios of issue 3's last acceptance point, each against a baseline
 * measured in the same run (interleaved where the two can alternate, so a busy machine slows both).
 *
 *   (a) handler overhead: p50 of the predict handler invoked in process with an API Gateway event
 *       vs p50 of raw `session.run` on the same input (encoder ≤ 1.10×, Iris ≤ +0.15 ms)
 *   (b) local HTTP throughput (autocannon) vs a bare node:http + onnxruntime-node server with as
 *       many processes as the local stack has handler instances (≥ 0.85×)
 *   (c) cold load of the ~45 MB encoder from the local S3 to the first prediction, through the
 *       local API, vs reading the file, creating the session and running it once (≤ 1.5×); with
 *       the same object's verified read from the local S3 alone, for the floor the transfer sets
 *   (d) one 1M-element FP32 input end to end through the local API, binary vs JSON (≥ 5×)
 *
 * The servers and the local S3 run in child processes so autocannon and the clients do not share
 * their event loop. (b) also reports the CPU time each server spends per request (from /proc).
 * Models are registered straight into the registry, fp32 served, so handler and baseline run the
 * same bytes.
 *
 *   npx tsx bench/predict.ts [--quick]
 */
import { fork } from 'node:child_process';
import cluster from 'node:cluster';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import * as ort from 'onnxruntime-node';
import { startLocalApi, toEvent } from '../local/http/index.ts';
import { lambdaContext } from '../local/lambda-context.ts';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION, startLocalS3 } from '../local/s3/index.ts';
import { ensureExampleModels } from '../models/generate.ts';
import { definedOnly, loadConfig } from '../src/config/index.ts';
import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType,
  valueInfo,
} from '../src/onnx/index.ts';
import { Registry } from '../src/registry/index.ts';
import { readHashed } from '../src/runtime/verified-read.ts';
import { createS3Client, S3ObjectStore } from '../src/storage/s3.ts';
import { mulberry32 } from '../src/util/index.ts';
import { registerVersion, setAliases } from '../test/support/registry.ts';
import { printTable, writeResults } from './lib/report.ts';

const QUICK = process.argv.includes('--quick');
/** `--only=a,c` runs some of the four parts */
const ONLY = new Set(
  (process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length) ?? 'a,b,c,d').split(
    ',',
  ),
);
const CORES = availableParallelism();
const ENCODER_SEQ = 128;
const BIG_ELEMENTS = 1_000_000;
/** encoder copies registered as versions 2.. for the cold loads of (c) */
const COLD_LOADS = QUICK ? 2 : 5;
const MiB = 1024 * 1024;
/** the environment as it was before (a) set the in-process handler's, for the child servers */
const BASE_ENV = { ...process.env };

type Feeds = Record<string, ort.Tensor>;

interface V2Input {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? Number.NaN;
};

// ─── the servers, in child processes ────────────────────────────────────────────────────────────

/**
 * `bare`: one node:http process, onnxruntime using every core (what one writes without the
 * platform). `bare-cluster`: as many such processes as the local stack has instances, one
 * onnxruntime thread each — the strongest baseline these cores allow.
 */
type ServerKind = 'local' | 'bare' | 'bare-cluster';
/** `s3`: the local S3, in a process of its own like the servers, so no client shares its thread */
type ChildKind = ServerKind | 's3';

async function serve(kind: ChildKind): Promise<void> {
  if (kind === 's3') {
    const s3 = await startLocalS3({
      port: 0,
      directory: process.env.BENCH_S3_DIRECTORY ?? '',
      bucket: 'maas-models',
    });
    process.send?.({ url: s3.endpoint });
    process.once('message', () => void s3.close().then(() => process.exit(0)));
    return;
  }
  if (kind === 'local') {
    // The handler instances' EMF and log lines go to a consumer, as the local stack's evaluator
    // reads them, not to a terminal.
    const api = await startLocalApi({ port: 0, workers: CORES, onOutput: () => undefined });
    process.send?.({ url: api.url });
    process.once('message', () => void api.close().then(() => process.exit(0)));
    return;
  }
  if (kind === 'bare') {
    const url = await bareServer(CORES);
    process.send?.({ url });
    process.once('message', () => process.exit(0));
    return;
  }
  if (cluster.isPrimary) {
    for (let i = 0; i < CORES; i++) cluster.fork();
    let url = '';
    cluster.on('listening', (_worker, address) => {
      if (url !== '') return;
      url = `http://127.0.0.1:${address.port}`;
      process.send?.({ url });
    });
    process.once('message', () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
      process.exit(0);
    });
    return;
  }
  await bareServer(1);
}

/**
 * What one would write without the platform: a node:http server with the sessions in memory,
 * V2 JSON in and out, no validation beyond what JSON.parse does.
 */
async function bareServer(threads: number): Promise<string> {
  const sessions = new Map<string, ort.InferenceSession>();
  for (const name of ['iris', 'encoder']) {
    const bytes = await readFile(join('models/generated', `${name}.onnx`));
    sessions.set(
      name,
      await ort.InferenceSession.create(bytes, {
        graphOptimizationLevel: 'all',
        intraOpNumThreads: threads,
      }),
    );
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const name = req.url?.split('/')[3] ?? '';
      const session = sessions.get(name);
      if (session === undefined) {
        res.writeHead(404).end();
        return;
      }
      const request = JSON.parse(Buffer.concat(chunks).toString()) as {
        inputs: V2Input[];
        outputs?: { name: string }[];
      };
      const feeds: Feeds = {};
      for (const input of request.inputs) {
        feeds[input.name] =
          input.datatype === 'INT64'
            ? new ort.Tensor('int64', BigInt64Array.from(input.data, BigInt), input.shape)
            : new ort.Tensor('float32', Float32Array.from(input.data), input.shape);
      }
      const names = request.outputs?.map((o) => o.name) ?? session.outputNames;
      const results = await session.run(feeds, names);
      const outputs = names.map((n) => {
        const t = results[n] as ort.Tensor;
        return {
          name: n,
          datatype: t.type,
          shape: t.dims,
          data: Array.from(t.data as Float32Array, Number),
        };
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ model_name: name, outputs }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Child {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** USER_HZ: 100 on every Linux the bench runs on */
const CLOCK_TICKS = 100;

/**
 * CPU time (user + system, ms) of a process and all its descendants, threads included, from
 * /proc; `undefined` where there is none (not Linux).
 */
function treeCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let total = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of children === '' ? [] : children.split(' ')) {
        total += treeCpuMs(Number(child)) ?? 0;
      }
    }
    return total;
  } catch {
    return undefined;
  }
}

async function startChild(kind: ChildKind, env: Record<string, string>): Promise<Child> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], {
    execArgv: ['--import', 'tsx'],
    env: { ...BASE_ENV, ...env },
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { url: string }) => resolve(m.url));
    child.once('exit', (code) => reject(new Error(`the ${kind} server exited with code ${code}`)));
  });
  return {
    url,
    pid: child.pid ?? 0,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.send('stop');
      }),
  };
}

// ─── the benchmark ──────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const models = await ensureExampleModels();
  const iris = new Uint8Array(await readFile(models.iris.path));
  const encoder = new Uint8Array(await readFile(models.encoder.path));
  const big = bigInputModel();
  const work = await mkdtemp(join(tmpdir(), 'maas-bench-predict-'));
  const s3 = await startChild('s3', { BENCH_S3_DIRECTORY: join(work, 's3') });
  const bucket = 'maas-models';
  const client = createS3Client({
    endpoint: s3.url,
    region: LOCAL_S3_REGION,
    credentials: LOCAL_S3_CREDENTIALS,
  });
  const store = new S3ObjectStore({ bucket, client });
  const registry = new Registry(store);
  await register(registry, 'iris', iris, 1);
  await register(registry, 'encoder', encoder, 1 + COLD_LOADS);
  await register(registry, 'sum1m', big, 1);

  const env: Record<string, string> = {
    MAAS_BUCKET: bucket,
    AWS_ENDPOINT_URL_S3: s3.url,
    AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    AWS_REGION: LOCAL_S3_REGION,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    // every cold load of (c) reads S3, not the disk cache
    MAAS_TMP_CACHE_BYTES: '0',
    MAAS_TMP_CACHE_DIR: join(work, 'tmp-cache'),
    // (d) sends ~19 MB of JSON: over Lambda's 6 MB, so the local caps are raised for the bench
    MAAS_MAX_BODY_BYTES: String(64 * MiB),
    MAAS_MAX_RESPONSE_BYTES: String(64 * MiB),
  };
  const results: Results = { loadAverage: { start: loadavg()[0] ?? 0 } };
  try {
    if (ONLY.has('a')) results.overhead = await handlerOverhead(env, iris, encoder);
    if (ONLY.has('b') || ONLY.has('c') || ONLY.has('d')) {
      const local = await startChild('local', env);
      const bare = ONLY.has('b')
        ? await Promise.all([startChild('bare', env), startChild('bare-cluster', env)])
        : [];
      try {
        const [single, clustered] = bare;
        if (single !== undefined && clustered !== undefined) {
          results.throughput = await httpThroughput({
            local,
            bare: single,
            'bare-cluster': clustered,
          });
        }
        if (ONLY.has('c')) results.coldLoad = await coldLoad(local.url, encoder, registry, store);
        if (ONLY.has('d')) results.binaryVsJson = await binaryVsJson(local.url);
      } finally {
        await Promise.all([local, ...bare].map((child) => child.stop()));
      }
    }
    results.loadAverage.end = loadavg()[0] ?? 0;
    await report(results);
  } finally {
    client.destroy();
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** `y = ReduceSum(x)` over a `[1, 1000000]` FP32 input: the request is large, the answer is not */
function bigInputModel(): Uint8Array {
  const FLOAT = TensorProto_DataType.FLOAT;
  return encodeModel(
    model({
      graph: graph({
        nodes: [node('ReduceSum', ['x'], ['y'], { keepdims: 1 })],
        inputs: [valueInfo('x', FLOAT, [1, BIG_ELEMENTS])],
        outputs: [valueInfo('y', FLOAT, [1, 1])],
      }),
      opset: 13,
      producer: 'bench',
    }),
  );
}

async function register(registry: Registry, name: string, bytes: Uint8Array, versions: number) {
  for (let i = 0; i < versions; i++) await registerVersion(registry, name, bytes);
  await setAliases(registry, name, { production: 1 });
}

// ─── (a) handler overhead ───────────────────────────────────────────────────────────────────────

interface OverheadCase {
  name: string;
  handlerP50: number;
  rawP50: number;
  ratio: number;
  deltaMs: number;
}

const irisRequest = (): { body: object; feeds: Feeds; outputs: string[] } => {
  const data = [5.1, 3.5, 1.4, 0.2];
  return {
    body: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data }] },
    feeds: { input: new ort.Tensor('float32', Float32Array.from(data), [1, 4]) },
    outputs: ['probabilities', 'label'],
  };
};

const encoderRequest = (seq: number): { body: object; feeds: Feeds; outputs: string[] } => {
  const rand = mulberry32(seq);
  const ids = Array.from({ length: seq }, () => 1 + Math.floor(rand() * 900));
  const mask = ids.map(() => 1);
  return {
    body: {
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, seq], data: ids },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, seq], data: mask },
      ],
      outputs: [{ name: 'sentence_embedding' }],
    },
    feeds: {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, seq]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask, BigInt), [1, seq]),
    },
    outputs: ['sentence_embedding'],
  };
};

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<unknown>;

/** Lambda ships stdout and stderr to CloudWatch; here the handler's log and EMF lines are dropped. */
const quietly = async <T>(body: () => Promise<T>): Promise<T> => {
  const { stdout, stderr } = process;
  const writes = [stdout.write, stderr.write] as const;
  const drop = (() => true) as typeof stdout.write;
  stdout.write = drop;
  stderr.write = drop;
  try {
    return await body();
  } finally {
    [stdout.write, stderr.write] = writes;
  }
};

async function handlerOverhead(
  env: Record<string, string>,
  iris: Uint8Array,
  encoder: Uint8Array,
): Promise<OverheadCase[]> {
  Object.assign(process.env, env, { MAAS_INTRA_OP_THREADS: String(CORES) });
  const { handler } = (await import('../functions/predict/handler.ts')) as { handler: Handler };
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: CORES,
  };
  const cases = [
    { name: 'iris', bytes: iris, request: irisRequest(), pairs: QUICK ? 300 : 3000 },
    {
      name: 'encoder',
      bytes: encoder,
      request: encoderRequest(ENCODER_SEQ),
      pairs: QUICK ? 20 : 150,
    },
  ];
  const results: OverheadCase[] = [];
  for (const c of cases) {
    const session = await ort.InferenceSession.create(c.bytes, options);
    const body = Buffer.from(JSON.stringify(c.request.body));
    const event = (i: number): APIGatewayProxyEventV2 =>
      toEvent({
        method: 'POST',
        url: `/v2/models/${c.name}/infer`,
        rawHeaders: ['host', 'localhost', 'content-type', 'application/json'],
        body,
        sourceIp: '127.0.0.1',
        requestId: `bench-${i}`,
        receivedAt: new Date(),
      });
    const handlerTimes: number[] = [];
    const rawTimes: number[] = [];
    await quietly(async () => {
      const first = (await handler(
        event(-1),
        lambdaContext({ requestId: 'warm', logStreamName: 'bench' }),
      )) as APIGatewayProxyStructuredResultV2;
      if (first.statusCode !== 200)
        throw new Error(`handler answered ${first.statusCode}: ${first.body}`);
      const warmup = Math.max(10, c.pairs / 10);
      for (let i = -warmup; i < c.pairs; i++) {
        const e = event(i);
        const t0 = performance.now();
        await handler(
          e,
          lambdaContext({ requestId: e.requestContext.requestId, logStreamName: 'bench' }),
        );
        const t1 = performance.now();
        await session.run(c.request.feeds, c.request.outputs);
        const t2 = performance.now();
        if (i < 0) continue;
        handlerTimes.push(t1 - t0);
        rawTimes.push(t2 - t1);
      }
    });
    await session.release();
    const handlerP50 = median(handlerTimes);
    const rawP50 = median(rawTimes);
    results.push({
      name: c.name,
      handlerP50,
      rawP50,
      ratio: handlerP50 / rawP50,
      deltaMs: handlerP50 - rawP50,
    });
  }
  return results;
}

// ─── (b) HTTP throughput ────────────────────────────────────────────────────────────────────────

interface ThroughputCase {
  name: string;
  localRps: number;
  bareRps: number;
  clusterRps: number;
  /** local / bare (one process) */
  ratio: number;
  /** local / bare cluster */
  clusterRatio: number;
  localP50Ms: number;
  bareP50Ms: number;
  clusterP50Ms: number;
  localNon2xx: number;
  /** CPU time the server's processes spent per answered request, all threads (Linux only) */
  localCpuUs?: number;
  bareCpuUs?: number;
  clusterCpuUs?: number;
}

async function httpThroughput(servers: Record<ServerKind, Child>): Promise<ThroughputCase[]> {
  const duration = QUICK ? 2 : 5;
  const rounds = QUICK ? 1 : 2;
  const kinds: ServerKind[] = ['bare', 'bare-cluster', 'local'];
  const cases = [
    { name: 'iris', body: JSON.stringify(irisRequest().body) },
    { name: 'encoder', body: JSON.stringify(encoderRequest(ENCODER_SEQ).body) },
  ];
  const results: ThroughputCase[] = [];
  for (const c of cases) {
    const cpuUs: Record<ServerKind, number[]> = { local: [], bare: [], 'bare-cluster': [] };
    const run = async (kind: ServerKind, seconds = duration): Promise<autocannon.Result> => {
      const before = treeCpuMs(servers[kind].pid);
      const result = await autocannon({
        url: `${servers[kind].url}/v2/models/${c.name}/infer`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: c.body,
        connections: CORES * 4,
        duration: seconds,
      });
      const after = treeCpuMs(servers[kind].pid);
      if (before !== undefined && after !== undefined && result.requests.total > 0) {
        cpuUs[kind].push(((after - before) * 1000) / result.requests.total);
      }
      return result;
    };
    for (const kind of kinds) await run(kind, 1);
    for (const kind of kinds) cpuUs[kind].length = 0;
    const runs: Record<ServerKind, autocannon.Result[]> = {
      local: [],
      bare: [],
      'bare-cluster': [],
    };
    for (let r = 0; r < rounds; r++) {
      for (const kind of kinds) runs[kind].push(await run(kind));
    }
    const cpu = (kind: ServerKind) => (cpuUs[kind].length === 0 ? undefined : median(cpuUs[kind]));
    const rps = (kind: ServerKind) => median(runs[kind].map((r) => r.requests.average));
    const p50 = (kind: ServerKind) => median(runs[kind].map((r) => r.latency.p50));
    results.push({
      name: c.name,
      localRps: rps('local'),
      bareRps: rps('bare'),
      clusterRps: rps('bare-cluster'),
      ratio: rps('local') / rps('bare'),
      clusterRatio: rps('local') / rps('bare-cluster'),
      localP50Ms: p50('local'),
      bareP50Ms: p50('bare'),
      clusterP50Ms: p50('bare-cluster'),
      localNon2xx: runs.local.reduce((n, r) => n + r.non2xx + r.errors, 0),
      ...definedOnly({
        localCpuUs: cpu('local'),
        bareCpuUs: cpu('bare'),
        clusterCpuUs: cpu('bare-cluster'),
      }),
    });
  }
  return results;
}

// ─── (c) cold load ──────────────────────────────────────────────────────────────────────────────

interface ColdRun {
  localMs: number;
  /** read the file + create the session + run */
  baselineMs: number;
  /** the read of the file alone, then the session's creation and first run */
  readMs: number;
  sessionMs: number;
  /** the same object read from the local S3 with the runtime's verified ranged read, alone */
  s3ReadMs: number;
}

interface ColdCase {
  localMs: number;
  baselineMs: number;
  ratio: number;
  /**
   * (S3 read + session + run) / baseline: the ratio if everything but fetching the bytes from the
   * local S3 (the API, the registry reads, the handler) cost nothing
   */
  floorRatio: number;
  runs: ColdRun[];
  bytes: number;
}

/**
 * Each run loads a version never loaded before, on handler instances that are warm (they have
 * answered requests before): the figure is a model's cold load, not an instance's start.
 */
async function coldLoad(
  localUrl: string,
  encoder: Uint8Array,
  registry: Registry,
  store: S3ObjectStore,
): Promise<ColdCase> {
  const request = encoderRequest(32);
  const body = JSON.stringify(request.body);
  const iris = JSON.stringify(irisRequest().body);
  await Promise.all(
    Array.from({ length: CORES * 4 }, () =>
      fetch(`${localUrl}/v2/models/iris/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: iris,
      }).then((res) => res.arrayBuffer()),
    ),
  );
  const { runtime } = loadConfig({});
  const ranged = {
    minBytes: runtime.rangedGetMinBytes,
    partBytes: runtime.rangedGetPartBytes,
    concurrency: runtime.rangedGetConcurrency,
  };
  const runs: ColdRun[] = [];
  for (let version = 2; version <= 1 + COLD_LOADS; version++) {
    let t0 = performance.now();
    const bytes = await readFile('models/generated/encoder.onnx');
    const readMs = performance.now() - t0;
    const session = await ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: 1,
    });
    await session.run(request.feeds, request.outputs);
    const baselineMs = performance.now() - t0;
    await session.release();

    t0 = performance.now();
    const res = await fetch(`${localUrl}/v2/models/encoder/versions/${version}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await res.arrayBuffer();
    const localMs = performance.now() - t0;
    if (res.status !== 200)
      throw new Error(`cold load of encoder v${version} answered ${res.status}`);

    const { fp32 } = (await registry.getManifest('encoder', version)).variants;
    t0 = performance.now();
    const read = await readHashed(store, fp32.key, fp32.bytes, ranged);
    const s3ReadMs = performance.now() - t0;
    if (read.sha256 !== fp32.sha256) throw new Error(`encoder v${version} read back changed`);
    runs.push({ localMs, baselineMs, readMs, sessionMs: baselineMs - readMs, s3ReadMs });
  }
  // Each pair ran back to back, so its ratio is the figure least moved by a busy machine.
  return {
    localMs: median(runs.map((r) => r.localMs)),
    baselineMs: median(runs.map((r) => r.baselineMs)),
    ratio: median(runs.map((r) => r.localMs / r.baselineMs)),
    floorRatio: median(runs.map((r) => (r.s3ReadMs + r.sessionMs) / r.baselineMs)),
    runs,
    bytes: encoder.byteLength,
  };
}

// ─── (d) binary vs JSON ─────────────────────────────────────────────────────────────────────────

interface TransferCase {
  binaryMs: number;
  jsonMs: number;
  speedup: number;
  binaryBytes: number;
  jsonBytes: number;
}

async function binaryVsJson(localUrl: string): Promise<TransferCase> {
  const rand = mulberry32(1);
  const values = Float32Array.from({ length: BIG_ELEMENTS }, () => rand() * 2 - 1);
  const url = `${localUrl}/v2/models/sum1m/infer`;
  const shape = [1, BIG_ELEMENTS];
  let binaryBytes = 0;
  let jsonBytes = 0;

  const viaJson = async (): Promise<number> => {
    const body = JSON.stringify({
      inputs: [{ name: 'x', datatype: 'FP32', shape, data: Array.from(values) }],
    });
    jsonBytes = body.length;
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const answer = (await res.json()) as { outputs?: { data: number[] }[]; error?: string };
    if (res.status !== 200) throw new Error(`JSON request answered ${res.status}: ${answer.error}`);
    return answer.outputs?.[0]?.data[0] ?? Number.NaN;
  };
  const viaBinary = async (): Promise<number> => {
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          {
            name: 'x',
            datatype: 'FP32',
            shape,
            parameters: { binary_data_size: values.byteLength },
          },
        ],
      }),
    );
    const body = Buffer.concat([
      header,
      Buffer.from(values.buffer, values.byteOffset, values.byteLength),
    ]);
    binaryBytes = body.byteLength;
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.byteLength),
      },
      body,
    });
    const answer = (await res.json()) as { outputs?: { data: number[] }[]; error?: string };
    if (res.status !== 200)
      throw new Error(`binary request answered ${res.status}: ${answer.error}`);
    return answer.outputs?.[0]?.data[0] ?? Number.NaN;
  };

  const sumJson = await viaJson();
  const sumBinary = await viaBinary();
  if (sumJson !== sumBinary)
    throw new Error(`binary (${sumBinary}) and JSON (${sumJson}) disagree`);
  const binary: number[] = [];
  const json: number[] = [];
  for (let i = 0; i < (QUICK ? 2 : 5); i++) {
    let t0 = performance.now();
    await viaBinary();
    binary.push(performance.now() - t0);
    t0 = performance.now();
    await viaJson();
    json.push(performance.now() - t0);
  }
  const binaryMs = median(binary);
  const jsonMs = median(json);
  return { binaryMs, jsonMs, speedup: jsonMs / binaryMs, binaryBytes, jsonBytes };
}

// ─── report ─────────────────────────────────────────────────────────────────────────────────────

interface Results {
  /** the 1-minute load average around the run: shared machines make every figure noisier */
  loadAverage: { start: number; end?: number };
  overhead?: OverheadCase[];
  throughput?: ThroughputCase[];
  coldLoad?: ColdCase;
  binaryVsJson?: TransferCase;
}

interface Target {
  figure: string;
  value: number;
  target: string;
  met: boolean;
}

const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');

async function report(results: Results): Promise<void> {
  const { overhead, throughput, coldLoad: cold, binaryVsJson: transfer } = results;
  const targets: Target[] = [];
  if (overhead !== undefined) {
    printTable(
      `(a) handler overhead: in-process handler with an API Gateway event vs raw session.run (encoder seq ${ENCODER_SEQ})`,
      ['model', 'handler p50 ms', 'session.run p50 ms', 'ratio', 'delta ms'],
      overhead.map((c) => [c.name, c.handlerP50, c.rawP50, c.ratio, c.deltaMs]),
    );
    for (const c of overhead) {
      targets.push(
        c.name === 'encoder'
          ? {
              figure: '(a) encoder handler / session.run',
              value: c.ratio,
              target: '≤ 1.10',
              met: c.ratio <= 1.1,
            }
          : {
              figure: '(a) Iris handler − session.run, ms',
              value: c.deltaMs,
              target: '≤ +0.15',
              met: c.deltaMs <= 0.15,
            },
      );
    }
  }
  if (throughput !== undefined) {
    printTable(
      `(b) HTTP throughput, autocannon ${CORES * 4} connections: local API (${CORES} instances) vs bare node:http + onnxruntime, one process (${CORES} threads) and a cluster of ${CORES}`,
      [
        'model',
        'local req/s',
        'bare req/s',
        'cluster req/s',
        'local/bare',
        'local/cluster',
        'local p50 ms',
        'bare p50 ms',
        'local non-2xx',
        'local CPU µs/req',
        'bare CPU µs/req',
        'cluster CPU µs/req',
      ],
      throughput.map((c) => [
        c.name,
        c.localRps,
        c.bareRps,
        c.clusterRps,
        c.ratio,
        c.clusterRatio,
        c.localP50Ms,
        c.bareP50Ms,
        c.localNon2xx,
        c.localCpuUs ?? '',
        c.bareCpuUs ?? '',
        c.clusterCpuUs ?? '',
      ]),
    );
    const handlerIris = overhead?.find((c) => c.name === 'iris');
    const bareIris = throughput.find((c) => c.name === 'iris');
    if (handlerIris !== undefined && bareIris?.bareCpuUs !== undefined) {
      console.log(
        `CPU µs/req: every thread of the server's processes, per answered request. The handler alone, in process (a), takes ${(handlerIris.handlerP50 * 1000).toFixed(0)} µs per Iris request: ${((handlerIris.handlerP50 * 1000) / bareIris.bareCpuUs).toFixed(2)}× the bare server's whole request.\n`,
      );
    }
    for (const c of throughput) {
      targets.push({
        figure: `(b) ${c.name} local / bare req/s`,
        value: c.ratio,
        target: '≥ 0.85',
        met: c.ratio >= 0.85,
      });
      targets.push({
        figure: `(b) ${c.name} local / bare cluster req/s`,
        value: c.clusterRatio,
        target: '≥ 0.85',
        met: c.clusterRatio >= 0.85,
      });
    }
  }
  if (cold !== undefined) {
    printTable(
      `(c) cold load to first prediction, encoder (${(cold.bytes / MiB).toFixed(1)} MiB): local S3 through the local API vs read file + create session + run`,
      [
        'run',
        'local ms',
        'baseline ms',
        'ratio',
        'file read ms',
        'session+run ms',
        'S3 read ms',
        'floor ratio',
      ],
      [
        ...cold.runs.map((r, i) => [
          String(i + 1),
          r.localMs,
          r.baselineMs,
          r.localMs / r.baselineMs,
          r.readMs,
          r.sessionMs,
          r.s3ReadMs,
          (r.s3ReadMs + r.sessionMs) / r.baselineMs,
        ]),
        ['median', cold.localMs, cold.baselineMs, cold.ratio, '', '', '', cold.floorRatio],
      ],
    );
    console.log(
      "S3 read: the same object with the runtime's verified ranged read, from the bench process, alone.\n" +
        'floor ratio: (S3 read + session+run) / baseline, the ratio if the API, the registry reads and the handler cost nothing.\n',
    );
    targets.push({
      figure: '(c) cold load local / baseline',
      value: cold.ratio,
      target: '≤ 1.5',
      met: cold.ratio <= 1.5,
    });
  }
  if (transfer !== undefined) {
    printTable(
      `(d) ${BIG_ELEMENTS} FP32 elements end to end through the local API`,
      ['encoding', 'body MiB', 'median ms'],
      [
        ['binary', transfer.binaryBytes / MiB, transfer.binaryMs],
        ['JSON', transfer.jsonBytes / MiB, transfer.jsonMs],
      ],
    );
    targets.push({
      figure: '(d) JSON / binary time',
      value: transfer.speedup,
      target: '≥ 5',
      met: transfer.speedup >= 5,
    });
  }
  const { start, end } = results.loadAverage;
  printTable(
    `targets (issue 3) — ${CORES} cores, load average ${start.toFixed(1)} → ${end?.toFixed(1)}`,
    ['figure', 'value', 'target', 'verdict'],
    targets.map((t) => [t.figure, t.value, t.target, verdict(t.met)]),
  );
  await writeResults('predict', { quick: QUICK, ...results, targets });
}

// Last, so every declaration above is initialised before either entry point runs.
if (process.argv[2] === '--serve') await serve(process.argv[3] as ChildKind);
else await main();
