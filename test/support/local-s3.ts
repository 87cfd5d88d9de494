import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  LOCAL_S3_CREDENTIALS,
  LOCAL_S3_REGION,
  type LocalS3,
  startLocalS3,
} from '../../local/s3/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../../src/storage/s3.ts';

export interface TestS3 {
  s3: LocalS3;
  client: S3Client;
  store: S3ObjectStore;
  /** the temporary data directory, removed by cleanup() */
  directory: string;
  cleanup(): Promise<void>;
}

/** A fresh local S3 on a free port over a temporary directory, with a client configured for it. */
export async function startTestS3(options: { bucket?: string } = {}): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 'maas-s3-'));
  const s3 = await startLocalS3({ port: 0, directory, bucket: options.bucket ?? 'maas-models' });
  const client = createS3Client({
    endpoint: s3.endpoint,
    region: LOCAL_S3_REGION,
    credentials: LOCAL_S3_CREDENTIALS,
  });
  const store = new S3ObjectStore({ bucket: s3.bucket, client });
  return {
    s3,
    client,
    store,
    directory,
    async cleanup() {
      client.destroy();
      await s3.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The environment a handler or the CLI needs to reach `s3`: bucket, endpoint, region, credentials. */
export const s3Env = (s3: LocalS3): Record<string, string> => ({
  MAAS_BUCKET: s3.bucket,
  AWS_ENDPOINT_URL_S3: s3.endpoint,
  AWS_REGION: LOCAL_S3_REGION,
  AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
});

/** Runs `body` against a fresh local S3 and always cleans up after it. */
export async function withLocalS3<T>(body: (s3: TestS3) => Promise<T>): Promise<T> {
  const s3 = await startTestS3();
  try {
    return await body(s3);
  } finally {
    await s3.cleanup();
  }
}

/**
 * The registry of a running local stack, through the S3 client and credentials the stack hands
 * its functions; `destroy` closes the client.
 */
export function stackRegistry(stack: {
  urls: { s3: string };
  bucket: string;
  env: Readonly<Record<string, string | undefined>>;
}): { registry: Registry; destroy: () => void } {
  const client = createS3Client({
    endpoint: stack.urls.s3,
    region: stack.env.AWS_REGION,
    credentials: {
      accessKeyId: stack.env.AWS_ACCESS_KEY_ID ?? '',
      secretAccessKey: stack.env.AWS_SECRET_ACCESS_KEY ?? '',
    },
  });
  return {
    registry: new Registry(new S3ObjectStore({ bucket: stack.bucket, client })),
    destroy: () => client.destroy(),
  };
}
