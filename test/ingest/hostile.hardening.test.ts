import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalIngest, startLocalIngest } from '../../local/ingest/index.ts';
import { type HistoryRecord, keys, Registry, type UploadRef } from '../../src/registry/index.ts';
import { ModelRuntime } from '../../src/runtime/index.ts';
import { createPredictApp, type PredictApp } from '../../src/serve/index.ts';
import { normalizeEtag } from '../../src/storage/index.ts';
import { auditRegistry } from '../support/hardening/audit.ts';
import {
  hugeAllocationModel,
  lyingShapeModel,
  slowLoopModel,
} from '../support/hardening/hostile-models.ts';
import { tinyRequestBody } from '../support/hardening/models.ts';
import { s3Env, startTestS3, type TestS3 } from '../support/local-s3.ts';
import { tinyModel } from '../support/models.ts';

/** ingest's warm-up cap per sample, lowered so a ~1 s model is "too slow" */
const RUN_CAP_MS = 150;

let s3: TestS3;
let ingest: LocalIngest;
let registry: Registry;
let runtime: ModelRuntime;
let app: PredictApp;
let tmp: string;

const upload = async (model: string, bytes: Uint8Array): Promise<UploadRef> => {
  const key = keys.incomingModel(model, 'model.onnx');
  const put = await s3.client.send(
    new PutObjectCommand({ Bucket: s3.s3.bucket, Key: key, Body: bytes }),
  );
  return { sourceKey: key, etag: normalizeEtag(put.ETag ?? '') };
};

/**
 * Waits for the upload's outcome while a client keeps predicting on the model already served:
 * every one of those requests must succeed, however the hostile model behaves.
 */
const outcomeWhileServing = async (
  model: string,
  ref: UploadRef,
): Promise<{ outcome: HistoryRecord; served: number[] }> => {
  const served: number[] = [];
  const deadline = Date.now() + 45_000;
  for (;;) {
    const res = await app({
      method: 'POST',
      path: '/v2/models/stable/infer',
      headers: { 'content-type': 'application/json' },
      query: {},
      body: new TextEncoder().encode(tinyRequestBody(2)),
      requestId: `stable-${served.length}`,
    });
    served.push(res.status);
    const outcome = await registry.findUploadOutcome(model, ref);
    if (outcome !== undefined) return { outcome, served };
    if (Date.now() > deadline) throw new Error(`no outcome for ${ref.sourceKey}`);
    await sleep(25);
  }
};

beforeAll(async () => {
  s3 = await startTestS3();
  tmp = await mkdtemp(join(tmpdir(), 'maas-hostile-'));
  registry = new Registry(s3.store);
  ingest = startLocalIngest({
    s3: s3.s3,
    env: {
      ...s3Env(s3.s3),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_DEV: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      MAAS_INTRA_OP_THREADS: '1',
      MAAS_INGEST_RUN_TIMEOUT_MS: String(RUN_CAP_MS),
    },
    timeoutMs: 60_000,
    onOutput: () => undefined,
  });
  const stable = await upload('stable', tinyModel({ seed: 42 }));
  const deadline = Date.now() + 60_000;
  while ((await registry.findUploadOutcome('stable', stable)) === undefined) {
    if (Date.now() > deadline) throw new Error('the stable model was never registered');
    await sleep(50);
  }
  runtime = new ModelRuntime({
    registry,
    store: s3.store,
    aliasTtlMs: 100,
    tmpCacheDir: tmp,
    intraOpThreads: 1,
  });
  app = createPredictApp({ provider: runtime });
});

afterAll(async () => {
  await ingest?.close();
  await runtime?.close();
  await s3?.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

describe('hostile models through the real upload path (local S3 → ingest instance)', () => {
  it.each([
    [
      'a model too slow to run (a Loop of 2,000,000 iterations)',
      'slow',
      () => slowLoopModel(2_000_000),
      { code: 'WarmupTooSlow', reason: /over the 150 ms cap/ },
    ],
    [
      'a model that would allocate 4 TiB (ConstantOfShape [2^20, 2^20])',
      'huge',
      hugeAllocationModel,
      // onnxruntime says `Failed to allocate` with its arena, `std::bad_alloc` without it
      { code: 'WarmupFailed', reason: /allocate|bad_alloc/ },
    ],
    [
      'a model whose declared output shape lies ([1, 3] declared, [1, 5] produced)',
      'liar',
      lyingShapeModel,
      {
        code: 'OutputSignatureMismatch',
        reason: /\[1, 3\][\s\S]*\[1, 5\]|\[1, 5\][\s\S]*\[1, 3\]/,
      },
    ],
  ] as const)(
    'rejects %s with its reason in history, while the served model keeps answering',
    async (_what, model, build, expected) => {
      const ref = await upload(model, build());
      const { outcome, served } = await outcomeWhileServing(model, ref);
      expect(outcome).toMatchObject({
        event: 'rejected',
        actor: 'ingest',
        details: { code: expected.code, sourceKey: ref.sourceKey },
      });
      expect(outcome.reason).toMatch(expected.reason);
      expect(served.length).toBeGreaterThan(0);
      expect(
        served.every((status) => status === 200),
        served.join(' '),
      ).toBe(true);
      expect(await registry.listVersions(model)).toEqual([]);
      expect(await registry.getAliases(model)).toBeUndefined();
    },
  );

  it('keeps the registry whole and the served model serving afterwards', async () => {
    await ingest.idle();
    const audit = await auditRegistry(registry);
    expect(audit.problems).toEqual([]);
    expect(await registry.listVersions('stable')).toEqual([1]);
    const res = await app({
      method: 'POST',
      path: '/v2/models/stable/infer',
      headers: {},
      query: {},
      body: new TextEncoder().encode(tinyRequestBody()),
      requestId: 'after',
    });
    expect(res.status).toBe(200);
  });
});
