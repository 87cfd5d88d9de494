import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join, resolve } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../../src/registry/index.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';

/** Keys a file path cannot hold faithfully, each aimed at a file outside or across folders. */
const TRICKS = [
  '../../../outside/pwned',
  '../outside-bucket/pwned',
  'incoming/../registry/iris/1/model.onnx',
  'incoming/./m/x.onnx',
  './registry/iris/1/model.onnx',
  'registry//iris/1/model.onnx',
  '/registry/iris/1/model.onnx',
  'incoming\\..\\..\\outside\\pwned',
  'incoming/m/x\0.onnx',
  'incoming/m/..',
];

let s3: TestS3;
let bucketDir: string;
/** a folder beside the data directory: nothing may ever appear in it */
let outside: string;
const variantKey = keys.variant('iris', 1, 'fp32');
const VARIANT = Buffer.from('the registered variant');

beforeAll(async () => {
  s3 = await startTestS3();
  bucketDir = join(s3.directory, s3.s3.bucket);
  outside = resolve(s3.directory, '..', 'outside');
  await s3.store.put(variantKey, VARIANT, { ifNoneMatch: '*' });
});
afterAll(async () => {
  await s3?.cleanup();
});

/** Where s3rver, unguarded, would store the key (it joins the key onto the bucket folder). */
const landing = (key: string): string => join(bucketDir, `${key}._S3rver_object`);

/** Every file under a folder, relative, so a test sees exactly what a request left behind. */
const filesUnder = (dir: string): string[] =>
  existsSync(dir)
    ? readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
        .sort()
    : [];

const statusOf = async (promise: Promise<unknown>): Promise<number | 'ok'> => {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
};

/** A raw request, for paths no SDK would send (it encodes or normalises them). */
const raw = (method: string, path: string, body?: string) =>
  new Promise<{ status: number; body: string }>((done, fail) => {
    // Options, not a URL: a URL would have its dot segments resolved before sending.
    const req = http.request({ host: '127.0.0.1', port: s3.s3.port, path, method }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', fail);
    req.end(body);
  });

const variantIntact = async () => {
  const object = await s3.store.get(variantKey);
  expect(Buffer.from(object?.body ?? []).equals(VARIANT)).toBe(true);
};

describe.each(TRICKS)('the key %j', (key) => {
  it('is refused on PUT, and nothing is written outside its folder or over another key', async () => {
    const before = filesUnder(bucketDir);
    const status = await statusOf(
      s3.client.send(new PutObjectCommand({ Bucket: s3.s3.bucket, Key: key, Body: 'pwned' })),
    );
    expect(status).toBe(400);
    expect(filesUnder(bucketDir)).toEqual(before);
    expect(existsSync(outside)).toBe(false);
    // (a landing inside the bucket is another key's file, checked by the listing above)
    if (!landing(key).startsWith(`${bucketDir}/`)) expect(existsSync(landing(key))).toBe(false);
    await variantIntact();
  });

  it('is refused on GET, reading nothing outside the bucket', async () => {
    // A file placed where a walk out of the bucket would land (inside the test's own folder).
    const target = landing(key);
    const planted = target.startsWith(s3.directory) && !target.startsWith(bucketDir);
    if (planted) {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, 'secret');
    }
    try {
      const status = await statusOf(
        s3.client.send(new GetObjectCommand({ Bucket: s3.s3.bucket, Key: key })),
      );
      expect(status).toBe(400);
    } finally {
      if (planted) rmSync(target);
    }
  });

  it('is refused as a copy source and as a copy destination', async () => {
    const asSource = await statusOf(
      s3.client.send(
        new CopyObjectCommand({
          Bucket: s3.s3.bucket,
          Key: 'incoming/m/copy.onnx',
          CopySource: `${s3.s3.bucket}/${encodeURIComponent(key)}`,
        }),
      ),
    );
    expect(asSource).toBe(400);
    const asDestination = await statusOf(
      s3.client.send(
        new CopyObjectCommand({
          Bucket: s3.s3.bucket,
          Key: key,
          CopySource: `${s3.s3.bucket}/${variantKey}`,
        }),
      ),
    );
    expect(asDestination).toBe(400);
    expect(existsSync(join(bucketDir, 'incoming', 'm', 'copy.onnx._S3rver_object'))).toBe(false);
    expect(existsSync(outside)).toBe(false);
    await variantIntact();
  });

  it('is refused when a multipart upload starts', async () => {
    const status = await statusOf(
      s3.client.send(new CreateMultipartUploadCommand({ Bucket: s3.s3.bucket, Key: key })),
    );
    expect(status).toBe(400);
  });

  it('lists nothing from outside the bucket as a prefix', async () => {
    const out = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.s3.bucket, Prefix: key, Delimiter: '/' }),
    );
    expect(out.Contents ?? []).toEqual([]);
    expect(out.CommonPrefixes ?? []).toEqual([]);
  });
});

describe('requests no SDK sends', () => {
  it('refuses dot segments sent raw or percent-encoded in the path', async () => {
    for (const path of [
      `/${s3.s3.bucket}/../../outside/pwned`,
      `/${s3.s3.bucket}/%2e%2e/%2e%2e/outside/pwned`,
      `/${s3.s3.bucket}/incoming/%2E%2E/registry/iris/1/model.onnx`,
      `/${s3.s3.bucket}/incoming%2F..%2F..%2Foutside`,
    ]) {
      expect((await raw('PUT', path, 'pwned')).status, path).toBe(400);
      expect((await raw('GET', path)).status, path).toBe(400);
    }
    expect(existsSync(outside)).toBe(false);
    await variantIntact();
  });

  it('refuses a bucket name that is a path: listing the parent folder is impossible', async () => {
    for (const path of ['/..', '/%2e%2e', '/..?list-type=2', '/./x', `/${s3.s3.bucket}%2F..`]) {
      const { status, body } = await raw('GET', path);
      expect(status, path).toBe(400);
      expect(body, path).toContain('InvalidBucketName');
    }
  });

  it('refuses a multipart upload id that is a path, writing no part anywhere', async () => {
    const before = filesUnder(s3.directory);
    const path = `/${s3.s3.bucket}/incoming/m/x.onnx?partNumber=1&uploadId=${encodeURIComponent('../../../outside/part')}`;
    const { status, body } = await raw('PUT', path, 'part bytes');
    expect(status).toBe(404);
    expect(body).toContain('NoSuchUpload');
    expect(filesUnder(s3.directory)).toEqual(before);
    expect(existsSync(outside)).toBe(false);
  });

  it('deletes nothing outside the bucket when a multi-object delete names such a key', async () => {
    const victim = resolve(bucketDir, '..', 'victim._S3rver_object');
    writeFileSync(victim, 'keep me');
    await statusOf(
      s3.client.send(
        new DeleteObjectsCommand({
          Bucket: s3.s3.bucket,
          Delete: {
            Objects: [{ Key: '../victim' }, { Key: 'incoming/../registry/iris/1/model.onnx' }],
          },
        }),
      ),
    );
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
    await variantIntact();
  });
});

describe('plain keys', () => {
  it('still work for PUT, GET, COPY, multipart and listing, including names with dots', async () => {
    const key = 'incoming/m.v2/file..name.onnx';
    await s3.client.send(new PutObjectCommand({ Bucket: s3.s3.bucket, Key: key, Body: 'ok' }));
    const got = await s3.client.send(new GetObjectCommand({ Bucket: s3.s3.bucket, Key: key }));
    expect(await got.Body?.transformToString()).toBe('ok');
    await s3.client.send(
      new CopyObjectCommand({
        Bucket: s3.s3.bucket,
        Key: 'incoming/m.v2/copy.onnx',
        CopySource: `${s3.s3.bucket}/${key}`,
      }),
    );
    const { UploadId } = await s3.client.send(
      new CreateMultipartUploadCommand({ Bucket: s3.s3.bucket, Key: 'incoming/m.v2/big.onnx' }),
    );
    const part = Buffer.alloc(1024, 7);
    const { ETag } = await s3.client.send(
      new UploadPartCommand({
        Bucket: s3.s3.bucket,
        Key: 'incoming/m.v2/big.onnx',
        UploadId,
        PartNumber: 1,
        Body: part,
      }),
    );
    await s3.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: s3.s3.bucket,
        Key: 'incoming/m.v2/big.onnx',
        UploadId,
        MultipartUpload: { Parts: [{ ETag, PartNumber: 1 }] },
      }),
    );
    const big = await s3.store.get('incoming/m.v2/big.onnx');
    expect(
      createHash('sha256')
        .update(big?.body ?? new Uint8Array())
        .digest('hex'),
    ).toBe(createHash('sha256').update(part).digest('hex'));
    const { keys: listed } = await s3.store.list('incoming/m.v2/');
    expect(listed.map((head) => head.key)).toEqual([
      'incoming/m.v2/big.onnx',
      'incoming/m.v2/copy.onnx',
      key,
    ]);
  });
});
