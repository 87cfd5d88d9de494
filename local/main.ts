import './sdk-warning.ts';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureExampleModels } from '../models/generate.ts';
import { loadConfig } from '../src/config/index.ts';
import { errorMessage } from '../src/errors/index.ts';
import type { IngestResult } from '../src/ingest/index.ts';
import {
  type HistoryRecord,
  keys,
  ModelNotFoundError,
  Registry,
  type UploadRef,
} from '../src/registry/index.ts';
import { normalizeEtag } from '../src/storage/index.ts';
import { createS3Client, S3ObjectStore } from '../src/storage/s3.ts';
import { fmtBytes } from '../src/util/index.ts';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION } from './s3/index.ts';
import { type LocalStack, startLocalStack } from './stack.ts';
import {
  readStackInfo,
  removeStackInfo,
  type StackInfo,
  uploadCommands,
  writeStackInfo,
} from './stack-info.ts';

/**
 * `npm start`: the local stack with the example models, configured by the variables of docs/design.md
 * (`MAAS_S3_PORT`, `MAAS_BUCKET`, `MAAS_HOME`, `PORT`). The examples go in through the upload path
 * users take, once: a restart finds them registered and keeps everything else too.
 */
const SEED_TIMEOUT_MS = 10 * 60_000;
/** an ingest under way when Ctrl-C arrives gets this long to finish (a second Ctrl-C cuts it) */
const STOP_GRACE_MS = 30_000;

const print = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

const summary = (result: IngestResult): string => {
  switch (result.status) {
    case 'registered':
      return `ingest: ${result.model} v${result.version} registered, serves ${result.served} (${result.alias === 'none' ? 'not routed' : result.alias})`;
    case 'rejected':
      return `ingest: ${result.key} rejected (${result.code}): ${result.reason}`;
    case 'duplicate':
      return `ingest: ${result.key} already ${result.event}, nothing to do`;
    case 'ignored':
      return `ingest: ${result.key} ignored: ${result.reason}`;
  }
};

interface Example {
  model: string;
  path: string;
  samplesPath: string;
}

/** Uploads an example as `maas push` does (samples first) unless the model has a version. */
async function seed(registry: Registry, example: Example): Promise<UploadRef | undefined> {
  const versions = await registry.listVersions(example.model).catch((err: unknown) => {
    if (err instanceof ModelNotFoundError) return [];
    throw err;
  });
  if (versions.length > 0) return undefined;
  const key = keys.incomingModel(example.model, basename(example.path));
  await registry.store.put(keys.samplesFor(key), await readFile(example.samplesPath), {
    contentType: 'application/json',
  });
  const { etag } = await registry.store.put(key, await readFile(example.path), {
    contentType: 'application/octet-stream',
  });
  return { sourceKey: key, etag: normalizeEtag(etag) };
}

async function waitForOutcome(
  registry: Registry,
  model: string,
  upload: UploadRef,
): Promise<HistoryRecord> {
  const deadline = Date.now() + SEED_TIMEOUT_MS;
  for (;;) {
    const outcome = await registry.findUploadOutcome(model, upload);
    if (outcome !== undefined) return outcome;
    if (Date.now() > deadline) {
      throw new Error(`${upload.sourceKey} was not ingested within ${SEED_TIMEOUT_MS / 1000} s`);
    }
    await sleep(250);
  }
}

/** A `curl` that works pasted into a POSIX shell: the body has no single quotes to escape. */
const curlFor = (apiUrl: string, model: string, body: unknown): string =>
  `curl -s -X POST ${apiUrl}/v2/models/${model}/infer -H 'content-type: application/json' -d '${JSON.stringify(body)}'`;

const openLog = async (dir: string, name: string): Promise<WriteStream> => {
  await mkdir(dir, { recursive: true });
  return createWriteStream(join(dir, name), { flags: 'a' });
};

async function main(): Promise<void> {
  const config = loadConfig();
  const home = resolve(config.local.home);
  const logs = join(home, 'logs');
  const [ingestLog, apiLog] = await Promise.all([
    openLog(logs, 'ingest.log'),
    openLog(logs, 'api.log'),
  ]);
  const running = readStackInfo(home);
  if (running?.live === true && running.info.pid !== process.pid) {
    throw new Error(
      `a stack already runs on ${home} (pid ${running.info.pid}, HTTP API ${running.info.api}): use it, stop it, or start this one with another MAAS_HOME`,
    );
  }
  print('onnx-maas: preparing the example models...');
  const examples = await ensureExampleModels();

  const stack: LocalStack = await startLocalStack({
    home,
    s3Port: config.local.s3Port,
    bucket: config.storage.bucket,
    httpPort: config.local.apiPort,
    consolePort: config.local.consolePort,
    workers: config.local.workers,
    ingest: {
      onOutput: (line) => ingestLog.write(`${line}\n`),
      onResult: (result) => print(summary(result)),
      onFailure: (record, reason) =>
        print(`ingest: gave up on ${decodeURIComponent(record.s3.object.key)}: ${reason}`),
    },
    onApiOutput: (line) => apiLog.write(`${line}\n`),
  });

  const { reaped, redelivered } = stack.recovered;
  if (reaped.uploads > 0) {
    print(
      `onnx-maas: removed ${reaped.uploads} unfinished multipart upload(s) of a previous run (${fmtBytes(reaped.bytes)})`,
    );
  }
  for (const upload of redelivered) {
    print(`onnx-maas: ${upload.key} has no outcome yet: delivered to ingest again`);
  }

  const client = createS3Client({
    endpoint: stack.urls.s3,
    region: LOCAL_S3_REGION,
    credentials: LOCAL_S3_CREDENTIALS,
  });
  const registry = new Registry(new S3ObjectStore({ bucket: stack.bucket, client }));
  const info: StackInfo = {
    pid: process.pid,
    home,
    api: stack.urls.api,
    s3: stack.urls.s3,
    bucket: stack.bucket,
    region: LOCAL_S3_REGION,
    credentials: { ...LOCAL_S3_CREDENTIALS },
    ...(stack.urls.console === undefined ? {} : { console: stack.urls.console }),
  };
  const infoFile = await writeStackInfo(info);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      print('onnx-maas: stopping now');
      process.exit(130);
    }
    stopping = true;
    print(`onnx-maas: ${signal}, stopping (an ingest under way may take a moment)...`);
    await removeStackInfo(home);
    await stack.close({ graceMs: STOP_GRACE_MS });
    client.destroy();
    ingestLog.end();
    apiLog.end();
    print(`onnx-maas: stopped; the data stays in ${home}`);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  const seeds: Example[] = [
    { model: 'iris', ...examples.iris },
    { model: 'encoder', ...examples.encoder },
  ];
  try {
    const uploads = await Promise.all(seeds.map((example) => seed(registry, example)));
    for (const [index, example] of seeds.entries()) {
      const upload = uploads[index];
      if (upload === undefined) {
        print(`${example.model}: already registered`);
        continue;
      }
      print(`${example.model}: uploaded to ${upload.sourceKey}, waiting for ingest...`);
      const outcome = await waitForOutcome(registry, example.model, upload);
      if (outcome.event === 'rejected') {
        throw new Error(`the example ${example.model} was rejected: ${outcome.reason ?? ''}`);
      }
    }
  } catch (err) {
    if (stopping) return;
    await stop('the examples could not be registered');
    throw err;
  }
  if (stopping) return;

  const [irisSample] = JSON.parse(await readFile(examples.iris.samplesPath, 'utf8')) as unknown[];
  const api = stack.urls.api;
  print();
  print('onnx-maas is running');
  print(`  HTTP API  ${api}  (Open Inference Protocol V2: ${api}/v2/models)`);
  if (stack.urls.console !== undefined) {
    print(
      `  console   ${stack.urls.console}  (models, canaries, live charts; Prometheus at /metrics)`,
    );
  } else if (stack.consoleProblem !== undefined) {
    print(`  console   not started: ${stack.consoleProblem}`);
  }
  print(
    `  S3        ${stack.urls.s3}  bucket ${stack.bucket}, credentials S3RVER / S3RVER, region ${LOCAL_S3_REGION}`,
  );
  print(`  data      ${home}  (logs in ${logs}; other terminals find the stack in ${infoFile})`);
  print();
  print('Predict with the Iris model:');
  print(curlFor(api, 'iris', irisSample));
  print();
  print('Upload a model (from this directory):');
  for (const command of uploadCommands(info)) print(`  ${command}`);
  print();
  print('Ctrl-C stops everything.');
}

main().catch((err: unknown) => {
  process.stderr.write(`onnx-maas: ${errorMessage(err)}\n`);
  process.exit(1);
});
