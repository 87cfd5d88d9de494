import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ObjectNotFoundError,
  PreconditionFailedError,
  StorageUnavailableError,
} from '../../src/storage/index.ts';
import { S3ObjectStore } from '../../src/storage/s3.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';

let t: TestS3;

beforeAll(async () => {
  t = await startTestS3();
});
afterAll(async () => {
  await t.cleanup();
});

const text = (body: Uint8Array | undefined) => new TextDecoder().decode(body);

describe('S3ObjectStore', () => {
  it('round-trips body, content type and user metadata', async () => {
    const { etag } = await t.store.put('meta/object.json', '{"a":1}', {
      contentType: 'application/json',
      metadata: { 'maas-quantize': 'off' },
    });
    const head = await t.store.head('meta/object.json');
    expect(head).toMatchObject({ etag, size: 7, contentType: 'application/json' });
    expect(head.metadata).toEqual({ 'maas-quantize': 'off' });
    expect(text((await t.store.get('meta/object.json'))?.body)).toBe('{"a":1}');
  });

  it('turns a conditional GET of an unchanged object into undefined', async () => {
    const { etag } = await t.store.put('cond/get', 'same');
    expect(await t.store.get('cond/get', { ifNoneMatch: etag })).toBeUndefined();
    await t.store.put('cond/get', 'changed');
    expect(text((await t.store.get('cond/get', { ifNoneMatch: etag }))?.body)).toBe('changed');
  });

  it('reads an inclusive byte range and reports the whole size', async () => {
    await t.store.put('range/digits', '0123456789');
    const part = await t.store.get('range/digits', { range: { start: 2, end: 5 } });
    expect(text(part?.body)).toBe('2345');
    expect(part?.size).toBe(10);
  });

  it('raises typed errors for a missing key and a lost conditional write', async () => {
    await expect(t.store.get('missing/key')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(t.store.head('missing/key')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await t.store.put('lost/race', 'one');
    await expect(t.store.put('lost/race', 'two', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    await expect(t.store.put('lost/race', 'two', { ifMatch: '"stale"' })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    await expect(t.store.put('lost/absent', 'x', { ifMatch: '"any"' })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
  });

  it('lists past one page, in key order, with common prefixes on request', async () => {
    const keys = Array.from({ length: 1010 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((key) => t.store.put(key, 'x')));
    }
    await t.store.put('many-sub/a/1', 'x');
    await t.store.put('many-sub/b/1', 'x');
    const listed = await t.store.list('many/');
    expect(listed.keys.map((head) => head.key)).toEqual(keys);
    const grouped = await t.store.list('many-sub/', { delimiter: '/' });
    expect(grouped).toEqual({ keys: [], prefixes: ['many-sub/a/', 'many-sub/b/'] });
  });

  it('reads a large object with parallel ranged GETs, identical to one GET', async () => {
    const bytes = new Uint8Array(5 * 1024 * 1024 + 17).map((_, i) => (i * 31) % 256);
    const { etag } = await t.store.put('large/object', bytes);
    const large = await t.store.getLarge('large/object', { partSize: 1024 * 1024, concurrency: 3 });
    expect(large.etag).toBe(etag);
    expect(Buffer.compare(Buffer.from(large.body), Buffer.from(bytes))).toBe(0);
  });

  it('tells a large read about each chunk it copied, all of them adding up to the object', async () => {
    const bytes = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7) % 256);
    await t.store.put('large/chunks', bytes);
    const chunks: number[] = [];
    const large = await t.store.getLarge('large/chunks', {
      partSize: 1024 * 1024,
      concurrency: 2,
      onChunk: (n) => chunks.push(n),
    });
    expect(Buffer.compare(Buffer.from(large.body), Buffer.from(bytes))).toBe(0);
    expect(chunks.length).toBeGreaterThanOrEqual(4);
    expect(chunks.every((n) => n > 0)).toBe(true);
    expect(chunks.reduce((a, n) => a + n, 0)).toBe(bytes.byteLength);
  });

  it('deletes objects', async () => {
    await t.store.put('gone/soon', 'x');
    await t.store.delete('gone/soon');
    await expect(t.store.get('gone/soon')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('reports an unreachable store as StorageUnavailableError with the cause', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const store = new S3ObjectStore({
      bucket: 'maas-models',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      maxAttempts: 1,
    });
    const failure = await store.get('any').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(StorageUnavailableError);
    expect((failure as Error).cause).toBeDefined();
    store.client.destroy();
  });

  it('reports a 5xx answer as StorageUnavailableError', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end(
        '<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const store = new S3ObjectStore({
      bucket: 'maas-models',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      maxAttempts: 1,
    });
    try {
      await expect(store.put('any', 'x')).rejects.toBeInstanceOf(StorageUnavailableError);
    } finally {
      store.client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
