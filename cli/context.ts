import type { S3Client } from '@aws-sdk/client-s3';
import type { Command } from 'commander';
import { loadConfig } from '../src/config/index.ts';
import { Registry } from '../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../src/storage/index.ts';

/** s3rver's fixed account, which the local stack accepts (DESIGN.md). */
const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface GlobalOptions {
  endpoint: string;
  bucket: string;
  region: string;
  json: boolean;
}

/** What every command works with; `close()` releases the client's sockets so the process exits. */
export interface CliContext {
  options: GlobalOptions;
  client: S3Client;
  store: S3ObjectStore;
  registry: Registry;
  /** true when the endpoint is this machine: the local stack */
  local: boolean;
  close(): void;
}

/** Defaults of the global options: the local stack that `npm start` runs. */
export function defaultGlobalOptions(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(env);
  return {
    endpoint: `http://127.0.0.1:${config.local.s3Port}`,
    bucket: config.storage.bucket,
    region: config.storage.region,
  };
}

export function globalOptions(command: Command): GlobalOptions {
  const all = command.optsWithGlobals<Partial<GlobalOptions>>();
  const defaults = defaultGlobalOptions();
  return {
    endpoint: all.endpoint ?? defaults.endpoint,
    bucket: all.bucket ?? defaults.bucket,
    region: all.region ?? defaults.region,
    json: all.json === true,
  };
}

const isLoopback = (endpoint: string): boolean => {
  const host = new URL(endpoint).hostname;
  return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
};

export function openContext(command: Command): CliContext {
  const options = globalOptions(command);
  const local = isLoopback(options.endpoint);
  const client = createS3Client({
    endpoint: options.endpoint,
    region: options.region,
    // A CLI call against a stopped stack should fail in seconds, not after long retries.
    maxAttempts: 2,
    connectionTimeoutMs: 2000,
    ...(local ? { credentials: LOCAL_CREDENTIALS } : {}),
  });
  const store = new S3ObjectStore({ bucket: options.bucket, client });
  return {
    options,
    client,
    store,
    registry: new Registry(store),
    local,
    close: () => client.destroy(),
  };
}
