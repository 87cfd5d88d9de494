import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGISTRY_PREFIX } from '../../../src/registry/index.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';

let s3: TestS3;

/** 50 models: a third with aliases.json, a third with only a version folder, a third with only history. */
const MODELS = Array.from({ length: 50 }, (_, i) => `m${String(i).padStart(2, '0')}`);
const keysOf = (model: string, i: number): string[] => {
  if (i % 3 === 0)
    return [
      `${REGISTRY_PREFIX}${model}/aliases.json`,
      `${REGISTRY_PREFIX}${model}/1/manifest.json`,
    ];
  if (i % 3 === 1)
    return [
      `${REGISTRY_PREFIX}${model}/1/manifest.json`,
      `${REGISTRY_PREFIX}${model}/1/model.onnx`,
    ];
  return [`${REGISTRY_PREFIX}${model}/history/000000000000001-a.json`];
};

beforeAll(async () => {
  s3 = await startTestS3();
  for (const [i, model] of MODELS.entries()) {
    for (const key of keysOf(model, i)) await s3.store.put(key, '{}', { ifNoneMatch: '*' });
  }
  // keys whose byte order differs from a directory walk's
  for (const key of [
    'incoming/b',
    'incoming/a/x',
    'incoming/a-b',
    'incoming/A',
    'incoming/é',
    'incoming/z',
  ]) {
    await s3.store.put(key, 'x');
  }
});
afterAll(async () => {
  await s3?.cleanup();
});

describe('listing with a delimiter', () => {
  it('returns every model folder, including those holding only nested objects', async () => {
    const { prefixes, keys } = await s3.store.list(REGISTRY_PREFIX, { delimiter: '/' });
    expect(keys).toEqual([]);
    expect(prefixes).toEqual(MODELS.map((m) => `${REGISTRY_PREFIX}${m}/`));
  });

  it('pages through the folders without skipping or repeating one, MaxKeys counting prefixes', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const out = await s3.client.send(
        new ListObjectsV2Command({
          Bucket: s3.s3.bucket,
          Prefix: REGISTRY_PREFIX,
          Delimiter: '/',
          MaxKeys: 7,
          ContinuationToken: token,
        }),
      );
      const page = (out.CommonPrefixes ?? []).map((p) => p.Prefix ?? '');
      expect(page.length + (out.Contents?.length ?? 0)).toBeLessThanOrEqual(7);
      seen.push(...page);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
      pages += 1;
    } while (token !== undefined);
    expect(pages).toBe(Math.ceil(MODELS.length / 7));
    expect(seen).toEqual(MODELS.map((m) => `${REGISTRY_PREFIX}${m}/`));
  });

  it('folds one model folder into keys and version folders', async () => {
    const { keys, prefixes } = await s3.store.list(`${REGISTRY_PREFIX}m00/`, { delimiter: '/' });
    expect(keys.map((k) => k.key)).toEqual([`${REGISTRY_PREFIX}m00/aliases.json`]);
    expect(prefixes).toEqual([`${REGISTRY_PREFIX}m00/1/`]);
  });
});

describe('listing order', () => {
  it('is S3 byte order, with start-after honoured', async () => {
    const out = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.s3.bucket, Prefix: 'incoming/' }),
    );
    const listed = (out.Contents ?? []).map((c) => c.Key);
    expect(listed).toEqual([
      'incoming/A',
      'incoming/a-b',
      'incoming/a/x',
      'incoming/b',
      'incoming/z',
      'incoming/é',
    ]);
    const after = await s3.client.send(
      new ListObjectsV2Command({
        Bucket: s3.s3.bucket,
        Prefix: 'incoming/',
        StartAfter: 'incoming/a/x',
      }),
    );
    expect((after.Contents ?? []).map((c) => c.Key)).toEqual([
      'incoming/b',
      'incoming/z',
      'incoming/é',
    ]);
  });
});
