import type { S3Client } from '@aws-sdk/client-s3';
import type { Command } from 'commander';
import { Registry } from '../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../src/storage/s3.ts';
import { resolveTarget, type Target } from './target.ts';

/** s3rver's fixed account, which the local stack accepts (docs/design.md). */
const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface GlobalOptions {
  /** unset: AWS S3 itself, for a deployed stack */
  endpoint?: string;
  bucket: string;
  region: string;
  json: boolean;
  target: Target;
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

export function globalOptions(command: Command): GlobalOptions {
  const target = resolveTarget(command);
  return {
    ...(target.s3Endpoint === undefined ? {} : { endpoint: target.s3Endpoint }),
    bucket: target.bucket,
    region: target.region,
    json: command.optsWithGlobals<{ json?: boolean }>().json === true,
    target,
  };
}

const isLoopback = (endpoint: string): boolean => {
  const host = new URL(endpoint).hostname;
  return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
};

export function openContext(command: Command): CliContext {
  const options = globalOptions(command);
  // A deployed stack always goes through the default credential chain, even behind a local
  // endpoint override: that is the path its users take.
  const local =
    options.target.kind === 'local' &&
    options.endpoint !== undefined &&
    isLoopback(options.endpoint);
  const client = createS3Client({
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    region: options.region,
    // A CLI call against a stopped stack should fail in seconds, not after long retries.
    maxAttempts: 2,
    connectionTimeoutMs: 2000,
    ...(local && options.target.kind === 'local'
      ? { credentials: options.target.credentials ?? LOCAL_CREDENTIALS }
      : {}),
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
