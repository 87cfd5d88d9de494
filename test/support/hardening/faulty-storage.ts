import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION } from '../../../local/s3/index.ts';
import { Registry } from '../../../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../../../src/storage/s3.ts';
import { S3ReadStore } from '../../../src/storage/s3-reader.ts';
import { type FaultProxy, startFaultProxy } from '../fault-proxy.ts';
import { startTestS3, type TestS3 } from '../local-s3.ts';

export interface FaultyStorage {
  /** the local S3, with a store that bypasses the proxy: for setup and for checking outcomes */
  s3: TestS3;
  proxy: FaultProxy;
  /** through the proxy, with the project's S3 client settings (3 attempts, bounded timeouts) */
  store: S3ObjectStore;
  registry: Registry;
  /** through the proxy, as predict reads the registry: `S3ReadStore` with its default settings */
  reader: S3ReadStore;
  /** over `reader` */
  readRegistry: Registry;
  /** over `s3.store`: what is really stored, read with no fault in the way */
  direct: Registry;
  close(): Promise<void>;
}

/** A fresh local S3 behind a fault proxy, and registries on both sides of the proxy. */
export async function startFaultyStorage(): Promise<FaultyStorage> {
  const s3 = await startTestS3();
  const proxy = await startFaultProxy({ target: s3.s3.endpoint });
  const client = createS3Client({
    endpoint: proxy.endpoint,
    region: LOCAL_S3_REGION,
    credentials: LOCAL_S3_CREDENTIALS,
  });
  const store = new S3ObjectStore({ bucket: s3.s3.bucket, client });
  const reader = new S3ReadStore({
    bucket: s3.s3.bucket,
    endpoint: proxy.endpoint,
    region: LOCAL_S3_REGION,
    credentials: LOCAL_S3_CREDENTIALS,
  });
  return {
    s3,
    proxy,
    store,
    reader,
    readRegistry: new Registry(reader),
    registry: new Registry(store),
    direct: new Registry(s3.store),
    async close() {
      proxy.clear();
      client.destroy();
      await proxy.close();
      await s3.cleanup();
    },
  };
}
