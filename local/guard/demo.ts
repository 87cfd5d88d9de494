import '../sdk-warning.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.ts';
import { errorMessage } from '../../src/errors/index.ts';
import { keys, Registry, validateModelName } from '../../src/registry/index.ts';
import { normalizeEtag, StorageUnavailableError } from '../../src/storage/index.ts';
import { createS3Client, S3ObjectStore } from '../../src/storage/s3.ts';
import { mulberry32 } from '../../src/util/index.ts';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION } from '../s3/index.ts';
import { readStackInfo, stackInfoPath } from '../stack-info.ts';
import { healthyModel, inferBody, lookupModel, sampleRow, trafficRow } from './demo-models.ts';

/**
 * `npx tsx local/guard/demo.ts [model]`, next to a running `npm start`: uploads a healthy version
 * (production at once) and a bad one (a 50 % canary that passes ingest on its samples but fails
 * on 4 real requests in 5), sends traffic, and prints what each version serves until the guard
 * rolls the bad one back. Finds the stack through `$MAAS_HOME/stack.json`, as the CLI does; without
 * one, through the variables of `npm start` (MAAS_S3_PORT, PORT, MAAS_BUCKET).
 */
const TIMEOUT_MS = 90_000;
const CLIENTS = 8;

const print = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

async function upload(
  registry: Registry,
  model: string,
  file: string,
  bytes: Uint8Array,
  metadata: Record<string, string>,
): Promise<number> {
  const key = keys.incomingModel(model, file);
  const random = mulberry32(bytes.byteLength);
  const samples = [1, 2, 3].map(() => JSON.parse(inferBody(sampleRow(random))) as unknown);
  await registry.store.put(keys.samplesFor(key), JSON.stringify(samples), {
    contentType: 'application/json',
  });
  const { etag } = await registry.store.put(key, bytes, {
    contentType: 'application/octet-stream',
    metadata: { 'maas-quantize': 'off', ...metadata },
  });
  const ref = { sourceKey: key, etag: normalizeEtag(etag) };
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(250)) {
    const outcome = await registry.findUploadOutcome(model, ref);
    if (outcome?.event === 'rejected') throw new Error(`${key} was rejected: ${outcome.reason}`);
    if (outcome?.version !== undefined) return outcome.version;
  }
  throw new Error(`${key} was not ingested within a minute: is \`npm start\` running?`);
}

async function main(): Promise<void> {
  const model = validateModelName(process.argv[2] ?? 'guard-demo');
  const config = loadConfig();
  const found = readStackInfo(config.local.home);
  const stack = found?.live === true ? found.info : undefined;
  const api = stack?.api ?? `http://127.0.0.1:${config.local.apiPort}`;
  const endpoint = stack?.s3 ?? `http://127.0.0.1:${config.local.s3Port}`;
  const client = createS3Client({
    endpoint,
    region: stack?.region ?? LOCAL_S3_REGION,
    credentials: stack?.credentials ?? LOCAL_S3_CREDENTIALS,
    maxAttempts: 2,
  });
  const bucket = stack?.bucket ?? config.storage.bucket;
  const registry = new Registry(new S3ObjectStore({ bucket, client }));
  const where =
    stack === undefined
      ? `no running stack in ${stackInfoPath(config.local.home)}${found === undefined ? '' : ` (it names pid ${found.info.pid}, which is gone)`}; tried ${endpoint}. Start one with \`npm start\`, or set MAAS_HOME to the data directory of the one running`
      : `the stack of ${stackInfoPath(config.local.home)} (pid ${stack.pid}) at ${endpoint}`;
  try {
    const good = await upload(registry, model, 'healthy.onnx', healthyModel(), {
      'maas-promote': 'now',
    });
    print(`${model} v${good}: y = 2x, production`);
    const bad = await upload(registry, model, 'lookup.onnx', lookupModel(), {
      'maas-canary-weight': '0.5',
    });
    print(`${model} v${bad}: same signature, a lookup that fails on values ≥ 4, candidate at 50 %`);
    print(`sending traffic with values up to 6 to ${api}/v2/models/${model}/infer ...`);

    const random = mulberry32(42);
    const counts = new Map<string, number>();
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        const res = await fetch(`${api}/v2/models/${model}/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: inferBody(trafficRow(random)),
        }).catch(() => undefined);
        await res?.arrayBuffer();
        const what = `v${res?.headers.get('x-maas-model-version') ?? '?'} ${res?.status ?? 'no answer'}`;
        counts.set(what, (counts.get(what) ?? 0) + 1);
      }
    };
    const workers = Array.from({ length: CLIENTS }, worker);
    const started = Date.now();
    let rolledBack = false;
    while (!rolledBack && Date.now() - started < TIMEOUT_MS) {
      await sleep(1000);
      const seconds = Math.round((Date.now() - started) / 1000);
      print(
        `  ${String(seconds).padStart(3)} s  ${[...counts].map(([k, n]) => `${k}: ${n}`).join('   ')}`,
      );
      counts.clear();
      rolledBack = (await registry.getAliases(model))?.aliases.rolledBack.includes(bad) ?? false;
    }
    if (rolledBack) {
      // a few more seconds show every answer coming from the good version again
      for (let i = 0; i < 3; i++) {
        await sleep(1000);
        print(`  after    ${[...counts].map(([k, n]) => `${k}: ${n}`).join('   ')}`);
        counts.clear();
      }
    }
    running = false;
    await Promise.all(workers);
    if (!rolledBack) {
      throw new Error(
        `v${bad} was not rolled back within ${TIMEOUT_MS / 1000} s: each period needs MAAS_GUARD_MIN_REQUESTS (default 20) requests to v${bad}; restart npm start with MAAS_GUARD_MIN_REQUESTS=5`,
      );
    }
    print();
    print(`the guard rolled v${bad} back; \`npx maas history ${model}\` says why:`);
    const [record] = (await registry.history(model)).filter(
      (r) => r.event === 'rolled-back' && r.version === bad,
    );
    print(`  ${record?.at ?? ''}  rolled-back v${bad}  ${record?.reason ?? ''}`);
  } catch (err) {
    if (err instanceof StorageUnavailableError) {
      throw new Error(`${errorMessage(err)}: ${where}`, { cause: err });
    }
    throw err;
  } finally {
    client.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`guard demo: ${errorMessage(err)}\n`);
  process.exitCode = 1;
});
