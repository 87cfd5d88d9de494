import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { LocalMetricsStore } from '../../local/guard/metrics-store.ts';
import { loadConfig } from '../../src/config/index.ts';
import type { AlarmDefinition } from '../../src/guard/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../../src/storage/s3.ts';
import type { Target } from '../target.ts';
import { ConsoleBackend } from './backend.ts';
import type { Bundle } from './bundle.ts';
import {
  CloudWatchMetrics,
  type JudgeOptions,
  LocalStoreMetrics,
  type MetricsSource,
  RemoteConsoleMetrics,
} from './metrics.ts';
import { type ConsoleServer, startConsoleServer } from './server.ts';

export { ConsoleBackend } from './backend.ts';
export { type Bundle, buildBundle } from './bundle.ts';
export {
  CloudWatchMetrics,
  LocalStoreMetrics,
  type MetricsSource,
  RemoteConsoleMetrics,
} from './metrics.ts';
export { ACTION_HEADER, ConsolePortInUseError, type ConsoleServer } from './server.ts';

const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface StartConsoleOptions {
  target: Target;
  /** 0 picks a free port */
  port: number;
  /** the rules whose thresholds the charts draw and whose health the statuses show */
  definitions: readonly AlarmDefinition[];
  /** how the guard judges (settle time, watch window), for the statuses. @default no settle, 1 h window */
  judge?: JudgeOptions;
  /**
   * Where the figures come from. Default: for a deployed stack CloudWatch; for the local stack
   * `localStore` when this process runs it, else the stack's own console at `metricsFrom`.
   */
  localStore?: LocalMetricsStore;
  metricsFrom?: string;
  /** a CloudWatch client (tests pass one whose calls are mocked) */
  cloudWatch?: CloudWatchClient;
  bundle?: Bundle;
}

export interface RunningConsole extends ConsoleServer {
  backend: ConsoleBackend;
}

/**
 * The console for a target, with the credentials and code paths the CLI uses: the registry
 * through S3 (s3rver's account locally, the default chain for a deployed stack), inference
 * through the HTTP API.
 */
export async function startConsole(options: StartConsoleOptions): Promise<RunningConsole> {
  const { target } = options;
  const client = createS3Client({
    ...(target.s3Endpoint === undefined ? {} : { endpoint: target.s3Endpoint }),
    region: target.region,
    maxAttempts: 2,
    connectionTimeoutMs: 2000,
    ...(target.kind === 'local' ? { credentials: LOCAL_CREDENTIALS } : {}),
  });
  let cloudWatch: CloudWatchClient | undefined;
  let metrics: MetricsSource;
  if (target.kind === 'stack') {
    cloudWatch = options.cloudWatch ?? new CloudWatchClient({ region: target.region });
    metrics = new CloudWatchMetrics(cloudWatch, options.definitions, options.judge);
  } else if (options.localStore !== undefined) {
    metrics = new LocalStoreMetrics(options.localStore, options.definitions, options.judge);
  } else {
    metrics = new RemoteConsoleMetrics(
      options.metricsFrom ?? defaultStackConsole(),
      options.definitions,
    );
  }
  const backend = new ConsoleBackend({
    target,
    registry: new Registry(new S3ObjectStore({ bucket: target.bucket, client })),
    client,
    metrics,
  });
  let server: ConsoleServer;
  try {
    server = await startConsoleServer({
      backend,
      port: options.port,
      ...(options.bundle === undefined ? {} : { bundle: options.bundle }),
    });
  } catch (err) {
    client.destroy();
    if (options.cloudWatch === undefined) cloudWatch?.destroy();
    throw err;
  }
  return {
    ...server,
    backend,
    close: async () => {
      await server.close();
      client.destroy();
      if (options.cloudWatch === undefined) cloudWatch?.destroy();
    },
  };
}

/** The console `npm start` runs, on `MAAS_CONSOLE_PORT` (3001 by default). */
const defaultStackConsole = (): string => `http://127.0.0.1:${loadConfig().local.consolePort}`;
