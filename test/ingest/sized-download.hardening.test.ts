import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_DEFAULTS, ingestUpload } from '../../src/ingest/index.ts';
import { keys, Registry } from '../../src/registry/index.ts';
import { normalizeEtag } from '../../src/storage/index.ts';
import type { S3ObjectStore } from '../../src/storage/s3.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';
import { tinyModel } from '../support/models.ts';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3?.cleanup();
});

/**
 * The store as ingest sees it, except that right after the HEAD of `key` another upload replaces
 * the object with `replacement`; counts the bytes every GET of `key` handed back.
 */
const racingStore = (store: S3ObjectStore, key: string, replacement: Uint8Array) => {
  const read = { bytes: 0 };
  let replaced = false;
  const proxy = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'head') {
        return async (k: string) => {
          const head = await target.head(k);
          if (k === key && !replaced) {
            replaced = true;
            await target.put(key, replacement);
          }
          return head;
        };
      }
      if (property === 'get' || property === 'getLarge') {
        return async (k: string, options?: object) => {
          const object = await Reflect.get(target, property, receiver).call(target, k, options);
          if (k === key) read.bytes += object?.body.byteLength ?? 0;
          return object;
        };
      }
      return Reflect.get(target, property, receiver);
    },
  });
  return { store: proxy, read };
};

describe('ingest downloads exactly the object it sized', () => {
  it('never reads a larger object that replaced the upload after its HEAD', async () => {
    const key = keys.incomingModel('raced', 'model.onnx');
    const { etag } = await s3.store.put(key, tinyModel());
    const larger = tinyModel({ paddingFloats: 1_000_000 });
    const { store, read } = racingStore(s3.store, key, larger);

    const result = await ingestUpload(
      { bucketKey: key, etag: normalizeEtag(etag) },
      { registry: new Registry(store), settings: { ...INGEST_DEFAULTS, intraOpThreads: 1 } },
    );

    expect(result).toMatchObject({ status: 'rejected', code: 'Superseded' });
    expect(read.bytes).toBe(0);
  });
});
