import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { S3EventRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_S3_CREDENTIALS, startLocalS3 } from '../../../local/s3/index.ts';
import { createS3Client, S3ObjectStore } from '../../../src/storage/s3.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';

let t: TestS3;

beforeAll(async () => {
  t = await startTestS3();
});
afterAll(async () => {
  await t.cleanup();
});

/** The HTTP status the SDK saw, from a resolved output or a thrown S3 error. */
async function statusOf(send: Promise<{ $metadata: { httpStatusCode?: number } }>) {
  try {
    return (await send).$metadata.httpStatusCode;
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  }
}

const put = (key: string, body: string, extra: { IfNoneMatch?: string; IfMatch?: string } = {}) =>
  t.client.send(new PutObjectCommand({ Bucket: t.s3.bucket, Key: key, Body: body, ...extra }));

/** Starts a multipart upload of `key` with `body` as its only part: what completing it takes. */
async function onePartUpload(key: string, body: string) {
  const upload = await t.client.send(
    new CreateMultipartUploadCommand({ Bucket: t.s3.bucket, Key: key }),
  );
  const part = await t.client.send(
    new UploadPartCommand({
      Bucket: t.s3.bucket,
      Key: key,
      UploadId: upload.UploadId,
      PartNumber: 1,
      Body: body,
    }),
  );
  return {
    Bucket: t.s3.bucket,
    Key: key,
    UploadId: upload.UploadId,
    MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag ?? '' }] },
  };
}

/** Collects ObjectCreated records until `count` arrived for keys starting with `prefix`. */
function nextRecords(prefix: string, count: number): Promise<S3EventRecord[]> {
  return new Promise((resolve) => {
    const seen: S3EventRecord[] = [];
    const stop = t.s3.onObjectCreated((record) => {
      if (!record.s3.object.key.startsWith(prefix)) return;
      seen.push(record);
      if (seen.length === count) {
        stop();
        resolve(seen);
      }
    });
  });
}

describe('local S3 conditional writes', () => {
  it('answers If-None-Match: * with 200 for a new key and 412 once it exists', async () => {
    expect(await statusOf(put('cond/create', 'first', { IfNoneMatch: '*' }))).toBe(200);
    let error: unknown;
    try {
      await put('cond/create', 'second', { IfNoneMatch: '*' });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    const body = await t.client.send(
      new GetObjectCommand({ Bucket: t.s3.bucket, Key: 'cond/create' }),
    );
    expect(await body.Body?.transformToString()).toBe('first');
  });

  it('answers If-Match with 200 for the current ETag and 412 for a stale one', async () => {
    const first = await put('cond/update', 'v1');
    const second = await put('cond/update', 'v2', { IfMatch: first.ETag ?? '' });
    expect(second.$metadata.httpStatusCode).toBe(200);
    expect(await statusOf(put('cond/update', 'v3', { IfMatch: first.ETag ?? '' }))).toBe(412);
    expect(await statusOf(put('cond/update', 'v3', { IfMatch: second.ETag ?? '' }))).toBe(200);
  });

  it('answers If-Match on a missing key with 404 NoSuchKey, as AWS does', async () => {
    expect(await statusOf(put('cond/missing', 'x', { IfMatch: '"0123"' }))).toBe(404);
  });

  it('lets exactly one of many racing creates win', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        statusOf(put('cond/race', `writer ${i}`, { IfNoneMatch: '*' })),
      ),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(11);
  });

  it('applies If-None-Match: * to CompleteMultipartUpload', async () => {
    const key = 'cond/multipart';
    await put(key, 'already here');
    const complete = t.client.send(
      new CompleteMultipartUploadCommand({
        ...(await onePartUpload(key, 'part one')),
        IfNoneMatch: '*',
      }),
    );
    expect(await statusOf(complete)).toBe(412);
  });
});

describe('local S3 notifications', () => {
  it('sends ObjectCreated records with the key URL-encoded and the bare ETag, as AWS does', async () => {
    const key = 'incoming/my model/v1 (final)+x=y.onnx';
    const arrived = nextRecords('incoming/my+model/', 1);
    const out = await put(key, 'model bytes');
    const [record] = await arrived;
    expect(record?.eventName).toBe('ObjectCreated:Put');
    expect(record?.eventSource).toBe('aws:s3');
    expect(record?.s3.bucket).toMatchObject({
      name: t.s3.bucket,
      arn: `arn:aws:s3:::${t.s3.bucket}`,
    });
    expect(record?.s3.object.key).toBe('incoming/my+model/v1+(final)%2Bx%3Dy.onnx');
    expect(decodeURIComponent((record?.s3.object.key ?? '').replace(/\+/g, ' '))).toBe(key);
    expect(record?.s3.object.size).toBe('model bytes'.length);
    expect(`"${record?.s3.object.eTag}"`).toBe(out.ETag);
  });

  it('names a completed multipart upload CompleteMultipartUpload', async () => {
    const key = 'incoming/multi/model.onnx';
    const arrived = nextRecords('incoming/multi/', 1);
    const done = await t.client.send(
      new CompleteMultipartUploadCommand(await onePartUpload(key, 'only part')),
    );
    const [record] = await arrived;
    expect(record?.eventName).toBe('ObjectCreated:CompleteMultipartUpload');
    expect(`"${record?.s3.object.eTag}"`).toBe(done.ETag);
  });
});

describe('local S3 storage', () => {
  it('keeps objects across a restart on the same directory', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'maas-s3-restart-'));
    try {
      const first = await startLocalS3({ directory });
      const client = createS3Client({
        endpoint: first.endpoint,
        credentials: LOCAL_S3_CREDENTIALS,
      });
      await new S3ObjectStore({ bucket: first.bucket, client }).put('kept', 'still here');
      client.destroy();
      await first.close();

      const second = await startLocalS3({ directory });
      const again = createS3Client({
        endpoint: second.endpoint,
        credentials: LOCAL_S3_CREDENTIALS,
      });
      const object = await new S3ObjectStore({ bucket: second.bucket, client: again }).get('kept');
      again.destroy();
      await second.close();
      expect(new TextDecoder().decode(object?.body)).toBe('still here');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('reads a 50 MB upload from the aws CLI back byte-identical through the SDK', async (context) => {
    const aws = await findAwsCli();
    if (aws === undefined) {
      console.warn(
        'skipped: no `aws` CLI on this machine (install Debian awscli to run this test)',
      );
      context.skip();
      return;
    }
    const directory = await mkdtemp(join(tmpdir(), 'maas-aws-cli-'));
    try {
      const file = join(directory, 'big.onnx');
      const bytes = randomBytes(50 * 1024 * 1024);
      await writeFile(file, bytes);
      const key = 'incoming/big/big model.onnx';
      const arrived = nextRecords('incoming/big/', 1);
      await promisify(execFile)(
        aws,
        [
          's3',
          'cp',
          file,
          `s3://${t.s3.bucket}/${key}`,
          '--endpoint-url',
          t.s3.endpoint,
          '--only-show-errors',
        ],
        {
          env: {
            ...process.env,
            AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
            AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
            AWS_DEFAULT_REGION: 'us-east-1',
            AWS_CONFIG_FILE: '/dev/null',
            AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
          },
        },
      );
      const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
      const whole = await t.store.get(key);
      expect(whole?.size).toBe(bytes.byteLength);
      expect(sha256(whole?.body ?? new Uint8Array())).toBe(sha256(bytes));
      const ranged = await t.store.getLarge(key, { partSize: 8 * 1024 * 1024, concurrency: 4 });
      expect(sha256(ranged.body)).toBe(sha256(bytes));
      const [record] = await arrived;
      expect(record?.s3.object.key).toBe('incoming/big/big+model.onnx');
      expect(record?.s3.object.size).toBe(bytes.byteLength);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

async function findAwsCli(): Promise<string | undefined> {
  for (const candidate of ['/usr/bin/aws', '/usr/local/bin/aws']) {
    try {
      await access(candidate);
      return candidate;
    } catch {}
  }
  try {
    const { stdout } = await promisify(execFile)('which', ['aws']);
    return stdout.trim() === '' ? undefined : stdout.trim();
  } catch {
    return undefined;
  }
}
