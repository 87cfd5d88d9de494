import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { INGEST_DEFAULTS } from '../src/ingest/index.ts';
import { parseEmfLine } from '../src/metrics/index.ts';
import { Registry } from '../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../src/storage/s3.ts';
import {
  LOCAL_TIME_SCALE,
  type LocalGuard,
  type LocalGuardOptions,
  startLocalGuard,
} from './guard/index.ts';
import { type LocalApi, type OutputListener, startLocalApi } from './http/index.ts';
import { type LocalIngest, type LocalIngestOptions, startLocalIngest } from './ingest/index.ts';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION, type LocalS3, startLocalS3 } from './s3/index.ts';

export interface LocalStackOptions {
  /** data directory: the bucket's objects and the model cache live under it, across restarts */
  home: string;
  /** 0 picks a free port */
  s3Port: number;
  bucket: string;
  /** the HTTP API; 0 picks a free port */
  httpPort: number;
  /** predict instances; @default the local config's (one per core) */
  workers?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** extra environment for every function, over the stack's */
  env?: Record<string, string>;
  ingest?: Pick<LocalIngestOptions, 'timeoutMs' | 'onResult' | 'onFailure' | 'onOutput'>;
  /** predict instances' log lines (EMF metrics among them) */
  onApiOutput?: OutputListener;
  /** the alarm evaluator and promote timer; settings default to the functions' environment */
  guard?: Omit<LocalGuardOptions, 'registry'>;
}

export interface LocalStack {
  urls: { api: string; s3: string };
  bucket: string;
  /** what any process needs to reach this stack's storage, as the functions get it */
  env: Record<string, string>;
  s3: LocalS3;
  ingest: LocalIngest;
  guard: LocalGuard;
  /** stops everything, the S3 last; `graceMs` lets an ingest in progress finish */
  close(options?: { graceMs?: number }): Promise<void>;
}

/**
 * The cloud stack on one machine, with the same handlers: the local S3 (conditional writes,
 * ObjectCreated events as AWS sends them), ingest on those events, the HTTP API in front of
 * predict. Services start in dependency order and stop in reverse; the guard's alarm evaluator and
 * promote timer belong after the API, since they read its metrics and move its aliases.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const home = resolve(options.home);
  const host = options.host ?? '127.0.0.1';
  await mkdir(join(home, 's3'), { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };

  try {
    const s3 = await startLocalS3({
      port: options.s3Port,
      host,
      directory: join(home, 's3'),
      bucket: options.bucket,
    });
    stops.push(() => s3.close());
    const env: Record<string, string> = {
      MAAS_BUCKET: s3.bucket,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_REGION: LOCAL_S3_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      MAAS_TMP_CACHE_DIR: join(home, 'cache'),
      // The guard's minutes run as seconds here: a candidate bakes on the same scale (30 s, not 30 min).
      MAAS_BAKE_MINUTES:
        process.env.MAAS_BAKE_MINUTES ??
        String(
          INGEST_DEFAULTS.bakeMinutes *
            Number(process.env.MAAS_GUARD_TIME_SCALE ?? LOCAL_TIME_SCALE),
        ),
    };
    const functionEnv = { ...env, ...options.env };

    const ingest = startLocalIngest({ s3, env: functionEnv, ...options.ingest });
    let graceMs = 0;
    stops.push(() => ingest.close({ graceMs }));

    // The guard: EMF lines of the predict instances → the rules → rollback; promote on a timer.
    const guardClient = createS3Client({
      endpoint: s3.endpoint,
      region: LOCAL_S3_REGION,
      credentials: LOCAL_S3_CREDENTIALS,
    });
    const guard = startLocalGuard({
      registry: new Registry(new S3ObjectStore({ bucket: s3.bucket, client: guardClient })),
      env: { ...process.env, ...functionEnv },
      ...options.guard,
    });
    stops.push(async () => {
      await guard.close();
      guardClient.destroy();
    });
    const onApiOutput = options.onApiOutput ?? printOutput;

    const api: LocalApi = await startLocalApi({
      port: options.httpPort,
      host,
      env: { ...functionEnv, ...guard.handlerEnv },
      ...(options.workers === undefined ? {} : { workers: options.workers }),
      onOutput: (line, stream, instance) => {
        guard.onOutput(line);
        onApiOutput(line, stream, instance);
      },
    });
    stops.push(() => api.close());

    return {
      urls: { api: api.url, s3: s3.endpoint },
      bucket: s3.bucket,
      env,
      s3,
      ingest,
      guard,
      async close(closeOptions = {}) {
        graceMs = closeOptions.graceMs ?? 0;
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Without a listener, the instances' log lines go to this process's output; their EMF lines are
 * the guard's, as CloudWatch takes them from a function's log in the cloud.
 */
const printOutput: OutputListener = (line, stream) => {
  if (parseEmfLine(line).length > 0) return;
  (stream === 'stderr' ? process.stderr : process.stdout).write(`${line}\n`);
};
