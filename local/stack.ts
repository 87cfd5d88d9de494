import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConsolePortInUseError, type RunningConsole, startConsole } from '../cli/console/index.ts';
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
import { type RecoveredUpload, redeliverPending } from './ingest/recover.ts';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION, type LocalS3, startLocalS3 } from './s3/index.ts';
import { type ReapedUploads, reapMultipartUploads } from './s3/reap-uploads.ts';

/** a multipart upload that received nothing for this long is abandoned (AWS: a lifecycle rule) */
const UPLOAD_IDLE_MS = 60 * 60_000;

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
  /** the console's port (0 picks a free one); unset: no console */
  consolePort?: number;
}

export interface LocalStack {
  urls: { api: string; s3: string; console?: string };
  /** why the console asked for did not start (its port was taken); the stack runs without it */
  consoleProblem?: string;
  bucket: string;
  /** what any process needs to reach this stack's storage, as the functions get it */
  env: Record<string, string>;
  s3: LocalS3;
  ingest: LocalIngest;
  guard: LocalGuard;
  /** what a previous run left: multipart parts removed, uploads with no outcome delivered again */
  recovered: { reaped: ReapedUploads; redelivered: RecoveredUpload[] };
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
    // Before the S3 listens, no client can be in the middle of a multipart upload: every one
    // there was cut off with a previous run. Later, those idle for an hour go.
    const s3Directory = join(home, 's3');
    const reaped = await reapMultipartUploads(s3Directory, options.bucket, { idleMs: 0 });
    const reaper = setInterval(() => {
      reapMultipartUploads(s3Directory, options.bucket, { idleMs: UPLOAD_IDLE_MS }).catch(
        () => undefined,
      );
    }, UPLOAD_IDLE_MS / 6);
    reaper.unref();
    stops.push(async () => clearInterval(reaper));
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
      // predict's shadow watches a promotion as long as the guard does, on the same clock
      MAAS_GUARD_TIME_SCALE: process.env.MAAS_GUARD_TIME_SCALE ?? String(LOCAL_TIME_SCALE),
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

    // The console reads the guard's own store: the figures its rules judge, not a copy.
    let consoleServer: RunningConsole | undefined;
    let consoleProblem: string | undefined;
    if (options.consolePort !== undefined) {
      try {
        consoleServer = await startConsole({
          target: {
            kind: 'local',
            s3Endpoint: s3.endpoint,
            bucket: s3.bucket,
            region: LOCAL_S3_REGION,
            apiUrl: api.url,
          },
          port: options.consolePort,
          definitions: guard.settings.definitions,
          judge: {
            settleMs: guard.settings.settleMs,
            watchWindowMs: guard.settings.watchWindowMs,
          },
          localStore: guard.metrics,
        });
        const running = consoleServer;
        stops.push(() => running.close());
      } catch (err) {
        // a page to look at is no reason to refuse serving models
        if (!(err instanceof ConsolePortInUseError)) throw err;
        consoleProblem = err.message;
      }
    }

    const redelivered = await redeliverPending(
      new Registry(new S3ObjectStore({ bucket: s3.bucket, client: guardClient })),
      ingest.deliver,
    );

    return {
      urls: {
        api: api.url,
        s3: s3.endpoint,
        ...(consoleServer === undefined ? {} : { console: consoleServer.url }),
      },
      ...(consoleProblem === undefined ? {} : { consoleProblem }),
      bucket: s3.bucket,
      env,
      s3,
      ingest,
      guard,
      recovered: { reaped, redelivered },
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
