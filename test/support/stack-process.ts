import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalStack } from '../../local/stack.ts';
import { ensureExampleModels } from '../../models/generate.ts';
import type { IngestResult } from '../../src/ingest/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../../src/storage/s3.ts';
import { inputLoopModel } from './hostile-models.ts';
import { registerVersion, setAliases } from './registry.ts';

/**
 * The whole local stack (S3, ingest, guard, HTTP API) in a child process, so that a test can
 * watch it survive, or die, without dying with it. Registered without ingest: `iris` and
 * `encoder` (the examples) and `hang` (a Loop whose trip count is an input).
 */
export interface StackProcessOptions {
  /** over the functions' environment (MAAS_INVOKE_TIMEOUT_MS...) */
  env?: Record<string, string>;
  workers?: number;
}

export interface StackProcess {
  api: string;
  /** what a client needs to reach the stack's S3 */
  env: Record<string, string>;
  /** the stack's output so far */
  output(): string;
  /** exit code or signal once the process is gone; `undefined` while it runs */
  exited(): string | undefined;
  /** uploads seen through ingest so far */
  ingested(): IngestResult[];
  close(): Promise<void>;
}

type FromChild =
  | { type: 'ready'; api: string; env: Record<string, string> }
  | { type: 'ingested'; result: IngestResult };

const HERE = fileURLToPath(import.meta.url);

export async function startStackProcess(options: StackProcessOptions = {}): Promise<StackProcess> {
  const child: ChildProcess = fork(HERE, ['--serve', JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let text = '';
  let exit: string | undefined;
  const results: IngestResult[] = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const gone = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = String(signal ?? code);
      resolve();
    }),
  );
  const ready = await new Promise<Extract<FromChild, { type: 'ready' }>>((resolve, reject) => {
    child.on('message', (message: FromChild) => {
      if (message.type === 'ready') resolve(message);
      else results.push(message.result);
    });
    void gone.then(() => reject(new Error(`the stack exited (${exit}):\n${text}`)));
  });
  return {
    api: ready.api,
    env: ready.env,
    output: () => text,
    exited: () => exit,
    ingested: () => results,
    async close() {
      if (exit === undefined) {
        child.send('close');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await gone;
        clearTimeout(timer);
      }
    },
  };
}

async function serve(options: StackProcessOptions): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), 'maas-stack-'));
  const stack = await startLocalStack({
    home,
    s3Port: 0,
    httpPort: 0,
    bucket: 'maas-models',
    workers: options.workers ?? 1,
    env: { POWERTOOLS_METRICS_DISABLED: 'true', POWERTOOLS_LOG_LEVEL: 'ERROR', ...options.env },
    ingest: {
      onResult: (result) => process.send?.({ type: 'ingested', result } satisfies FromChild),
      onOutput: () => undefined,
    },
    onApiOutput: (line) => {
      // the runtime's own words stay visible to the test (a native abort prints on stderr)
      if (!line.startsWith('{')) process.stderr.write(`${line}\n`);
    },
  });
  const client = createS3Client({
    endpoint: stack.urls.s3,
    region: stack.env.AWS_REGION ?? 'us-east-1',
    credentials: {
      accessKeyId: stack.env.AWS_ACCESS_KEY_ID ?? '',
      secretAccessKey: stack.env.AWS_SECRET_ACCESS_KEY ?? '',
    },
  });
  const registry = new Registry(new S3ObjectStore({ bucket: stack.bucket, client }));
  const { iris, encoder } = await ensureExampleModels();
  const models: [string, Uint8Array][] = [
    ['iris', new Uint8Array(await readFile(iris.path))],
    ['encoder', new Uint8Array(await readFile(encoder.path))],
    ['hang', inputLoopModel()],
  ];
  for (const [name, bytes] of models) {
    await registerVersion(registry, name, bytes);
    await setAliases(registry, name, { production: 1 });
  }
  process.on('message', () => {
    void (async () => {
      await stack.close();
      client.destroy();
      await rm(home, { recursive: true, force: true });
      process.exit(0);
    })();
  });
  process.send?.({ type: 'ready', api: stack.urls.api, env: stack.env } satisfies FromChild);
}

if (process.argv[2] === '--serve') await serve(JSON.parse(process.argv[3] ?? '{}'));
