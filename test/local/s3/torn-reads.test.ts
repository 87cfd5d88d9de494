import fs, { readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION } from '../../../local/s3/index.ts';
import { type Aliases, keys, Registry } from '../../../src/registry/index.ts';
import { StorageUnavailableError } from '../../../src/storage/index.ts';
import { createS3Client, S3ObjectStore } from '../../../src/storage/s3.ts';
import { startFaultProxy } from '../../support/fault-proxy.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';
import { overwrite } from '../../support/registry.ts';

/**
 * s3rver used to answer a PUT before the object's file was written (and wrote it over the old one
 * in place): a read right after a write could get an empty or partial body under the new ETag,
 * and an aborted upload truncated the stored object for good. A slow disk makes that window wide
 * enough to hit every time instead of once in a few hundred writes.
 */
interface SlowDisk {
  /** streamed writes delayed so far */
  readonly delayed: number;
  restore(): void;
}

type FsWrite = (...args: unknown[]) => void;

/**
 * Delays writes of object bodies under `directory` (s3rver's `<name>._S3rver_object` files, also
 * while they have a temporary name), not of the small MD5 and metadata files beside them, which
 * s3rver writes after the body: delaying those too would hide a body written late.
 */
function slowDisk(directory: string, ms: number): SlowDisk {
  const root = realpathSync(directory);
  const original = { write: fs.write, writev: fs.writev };
  let delayed = 0;
  const isObjectBody = (fd: unknown): boolean => {
    if (typeof fd !== 'number') return false;
    try {
      const path = readlinkSync(`/proc/self/fd/${fd}`);
      return path.startsWith(root) && /\._S3rver_object(\.tmp-[0-9a-f]+)?$/.test(path);
    } catch {
      return false;
    }
  };
  const slowed =
    (write: FsWrite): FsWrite =>
    (...args) => {
      if (!isObjectBody(args[0])) {
        write.apply(fs, args);
        return;
      }
      delayed += 1;
      setTimeout(() => write.apply(fs, args), ms);
    };
  fs.write = slowed(original.write as FsWrite) as unknown as typeof fs.write;
  fs.writev = slowed(original.writev as FsWrite) as unknown as typeof fs.writev;
  return {
    get delayed() {
      return delayed;
    },
    restore() {
      fs.write = original.write;
      fs.writev = original.writev;
    },
  };
}

/** `padding` old versions make bodies of different lengths. */
const aliasesFor = (production: number, padding = 0): Aliases => ({
  model: 'torn',
  production,
  knownGood: [production],
  rolledBack: Array.from({ length: padding }, (_, i) => i + 1000),
  updatedAt: '',
});

let s3: TestS3;
let registry: Registry;
const disks: SlowDisk[] = [];

beforeEach(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
});
afterEach(async () => {
  for (const disk of disks.splice(0)) disk.restore();
  await s3.cleanup();
});

// /proc/self/fd is how the slow disk finds which writes land in the store's directory.
describe.skipIf(process.platform !== 'linux')('reads right after writes on a slow disk', () => {
  it('a read right after a write sees the whole new aliases, plain and conditional', async () => {
    await registry.updateAliases('torn', () => aliasesFor(1));
    const disk = slowDisk(s3.directory, 100);
    disks.push(disk);
    for (let version = 2; version <= 4; version++) {
      const before = await registry.getAliases('torn');
      const written = await registry.updateAliases('torn', () => aliasesFor(version));
      const plain = await registry.getAliases('torn');
      expect(plain).toEqual({ aliases: written.aliases, etag: written.etag });
      const changed = await registry.getAliasesIfChanged('torn', before?.etag ?? '');
      expect(changed).toEqual({ aliases: written.aliases, etag: written.etag });
    }
    expect(disk.delayed).toBeGreaterThan(0);
  });

  it('concurrent writers, readers, conditional readers and HEADs never see a torn object', async () => {
    await registry.updateAliases('torn', () => aliasesFor(1));
    const disk = slowDisk(s3.directory, 10);
    disks.push(disk);
    const key = keys.aliases('torn');
    const stop = Date.now() + 3000;
    const failures: string[] = [];
    const sizesByEtag = new Map<string, Set<number>>();
    const seen = (etag: string, size: number) => {
      const sizes = sizesByEtag.get(etag) ?? new Set<number>();
      sizes.add(size);
      sizesByEtag.set(etag, sizes);
    };
    const count = { writes: 0, reads: 0, conditional: 0, heads: 0 };
    const loop = (body: () => Promise<void>) => async () => {
      while (Date.now() < stop) {
        try {
          await body();
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const writer = (id: number) => {
      let n = 0;
      return loop(async () => {
        // Lengths vary, so a body from one write under another's ETag would show.
        const padding = (id * 7 + n++ * 3) % 40;
        await registry.updateAliases('torn', (current) =>
          aliasesFor((current?.production ?? 0) + 1, padding),
        );
        count.writes++;
      });
    };
    const reader = loop(async () => {
      const object = await s3.store.get(key);
      if (object === undefined) throw new Error(`${key} vanished`);
      JSON.parse(new TextDecoder().decode(object.body));
      seen(object.etag, object.body.byteLength);
      count.reads++;
    });
    let etag = '';
    const conditional = loop(async () => {
      const snapshot = await registry.getAliasesIfChanged('torn', etag || 'none');
      if (snapshot !== undefined) etag = snapshot.etag;
      count.conditional++;
    });
    const header = loop(async () => {
      const head = await s3.store.head(key);
      seen(head.etag, head.size);
      count.heads++;
    });
    await Promise.all([
      ...[1, 2, 3].map((id) => writer(id)()),
      reader(),
      reader(),
      conditional(),
      header(),
    ]);
    expect(failures).toEqual([]);
    const torn = [...sizesByEtag].filter(([, sizes]) => sizes.size > 1);
    expect(torn).toEqual([]);
    expect(count.writes).toBeGreaterThan(5);
    expect(count.reads + count.conditional + count.heads).toBeGreaterThan(20);
    expect(disk.delayed).toBeGreaterThan(0);
  });
});

describe('interrupted transfers', () => {
  it('an upload aborted mid-body leaves the stored object exactly as it was', async () => {
    const key = keys.aliases('torn');
    const original = JSON.stringify(aliasesFor(1, 60));
    await overwrite(s3.store, key, original);
    const before = await s3.store.head(key);

    const body = new Readable({ read() {} });
    body.push(Buffer.from('{"production": 2, "note": "'));
    const abort = new AbortController();
    const sending = s3.client.send(
      new PutObjectCommand({
        Bucket: s3.s3.bucket,
        Key: key,
        Body: body,
        ContentLength: 1000,
        IfMatch: before.etag,
      }),
      { abortSignal: abort.signal },
    );
    setTimeout(() => abort.abort(), 200);
    await expect(sending).rejects.toThrow();

    const after = await s3.store.get(key);
    expect(after?.etag).toBe(before.etag);
    expect(new TextDecoder().decode(after?.body)).toBe(original);
    expect(await s3.store.get(key, { ifNoneMatch: before.etag })).toBeUndefined();
    // Nothing of the aborted upload is left beside the object's own three files.
    const stored = readdirSync(join(s3.directory, s3.s3.bucket, 'registry', 'torn'));
    expect(stored.sort()).toEqual(
      [
        'aliases.json._S3rver_metadata.json',
        'aliases.json._S3rver_object',
        'aliases.json._S3rver_object.md5',
      ].sort(),
    );
  });

  it('a GET whose body is cut short fails as StorageUnavailableError, never a short body', async () => {
    const key = keys.aliases('torn');
    await overwrite(s3.store, key, JSON.stringify(aliasesFor(1, 900)));
    const proxy = await startFaultProxy({ target: s3.s3.endpoint });
    const client = createS3Client({
      endpoint: proxy.endpoint,
      region: LOCAL_S3_REGION,
      credentials: LOCAL_S3_CREDENTIALS,
    });
    try {
      const store = new S3ObjectStore({ bucket: s3.s3.bucket, client });
      proxy.set({ kind: 'truncate', bytes: 100 });
      await expect(store.get(key)).rejects.toBeInstanceOf(StorageUnavailableError);
      await expect(new Registry(store).getAliases('torn')).rejects.toBeInstanceOf(
        StorageUnavailableError,
      );
      proxy.clear();
      expect((await new Registry(store).getAliases('torn'))?.aliases.production).toBe(1);
    } finally {
      client.destroy();
      await proxy.close();
    }
  });
});
