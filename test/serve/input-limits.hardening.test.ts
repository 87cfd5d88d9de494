import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleModels } from '../../models/generate.ts';
import type { HttpResponse } from '../../src/protocol/index.ts';
import { ModelRuntime } from '../../src/runtime/index.ts';
import { createPredictApp, type PredictApp } from '../../src/serve/index.ts';
import { type Harness, startHarness } from '../support/ingest-harness.ts';
import { tinyModel } from '../support/models.ts';

let harness: Harness;
let tmp: string;
let runtime: ModelRuntime;
let app: PredictApp;

const utf8 = new TextEncoder();
const call = (method: string, path: string, body?: unknown): Promise<HttpResponse> =>
  app({
    method,
    path,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    query: {},
    body: body === undefined ? undefined : utf8.encode(JSON.stringify(body)),
    requestId: `limits-${path}`,
  });
const json = (res: HttpResponse): Record<string, unknown> =>
  JSON.parse(typeof res.body === 'string' ? res.body : Buffer.from(res.body).toString());

const encoderRequest = (batch: number, seq: number) => {
  const ids = Array.from({ length: batch * seq }, (_, i) => 100 + (i % 900));
  return {
    inputs: [
      { name: 'input_ids', datatype: 'INT64', shape: [batch, seq], data: ids },
      { name: 'attention_mask', datatype: 'INT64', shape: [batch, seq], data: ids.map(() => 1) },
    ],
  };
};

beforeAll(async () => {
  harness = await startHarness();
  const { encoder } = await ensureExampleModels();
  const samples = JSON.parse(await readFile(encoder.samplesPath, 'utf8')) as unknown[];
  const uploads = [
    await harness.upload('encoder', 'encoder.onnx', new Uint8Array(await readFile(encoder.path)), {
      samples,
      metadata: { 'maas-quantize': 'off' },
    }),
    await harness.upload('capped', 'tiny.onnx', tinyModel(), {
      metadata: { 'maas-quantize': 'off', 'maas-max-elements': '8' },
    }),
  ];
  for (const [i, model] of ['encoder', 'capped'].entries()) {
    const upload = uploads[i];
    if (upload !== undefined) {
      expect(await harness.outcome(model, upload)).toMatchObject({ event: 'registered' });
    }
  }
  tmp = await mkdtemp(join(tmpdir(), 'maas-limits-'));
  runtime = new ModelRuntime({
    registry: harness.registry,
    store: harness.s3.store,
    aliasTtlMs: 0,
    tmpCacheDir: tmp,
    tmpCacheBytes: 0,
    intraOpThreads: 1,
    retryAfterSeconds: 2,
  });
  app = createPredictApp({ provider: runtime });
}, 300_000);

afterAll(async () => {
  await runtime?.close();
  await harness?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('a per-model bound on one request', () => {
  it('is learned at ingest from the samples (largest × 64) and shown in the model metadata', async () => {
    const meta = json(await call('GET', '/v2/models/encoder'));
    // the largest encoder sample is [4, 24] twice: 192 elements
    expect(meta.limits).toEqual({ max_elements: 192 * 64, source: 'samples' });
  });

  it('refuses the [64, 512] encoder request with 413 stating the bound, before running it', async () => {
    const res = await call('POST', '/v2/models/encoder/infer', encoderRequest(64, 512));

    expect(res.status).toBe(413);
    expect(json(res).error).toContain('model encoder v1 takes at most 12288 elements per request');
    expect(json(res).error).toContain('"input_ids" [64, 512]');
    expect((await call('POST', '/v2/models/encoder/infer', encoderRequest(2, 128))).status).toBe(
      200,
    );
  });

  it('keeps RSS growth under 64 MB across 100 refusals of the [64, 512] request', async () => {
    const heavy = encoderRequest(64, 512);
    await call('POST', '/v2/models/encoder/infer', heavy);
    const before = process.memoryUsage.rss();
    for (let i = 0; i < 100; i++) {
      expect((await call('POST', '/v2/models/encoder/infer', heavy)).status).toBe(413);
    }
    expect(process.memoryUsage.rss() - before).toBeLessThan(64 * 1024 * 1024);
  });

  it("takes the uploader's maas-max-elements over anything learned, on V2 and V1", async () => {
    const meta = json(await call('GET', '/v2/models/capped'));
    expect(meta.limits).toEqual({ max_elements: 8, source: 'metadata' });
    const v2 = (shape: number[]) =>
      call('POST', '/v2/models/capped/infer', {
        inputs: [{ name: 'x', datatype: 'FP32', shape, data: Array((shape[0] ?? 0) * 4).fill(1) }],
      });
    expect((await v2([2, 4])).status).toBe(200);
    const over = await v2([3, 4]);
    expect(over.status).toBe(413);
    expect(json(over).error).toContain('set by its uploader with maas-max-elements');
    const v1 = await call('POST', '/v1/models/capped:predict', {
      instances: [
        [1, 2, 3, 4],
        [1, 2, 3, 4],
        [1, 2, 3, 4],
      ],
    });
    expect(v1.status).toBe(413);
  });

  it('holds explanations to the same bound, V2 and V1, before any model run (found by attack)', async () => {
    const rows = (n: number) => Array.from({ length: n }, () => [1, 2, 3, 4]);
    const v1 = await call('POST', '/v1/models/capped:explain', { instances: rows(3) });
    expect(v1.status).toBe(413);
    expect(json(v1).error).toContain('maas-max-elements');
    const v2 = await call('POST', '/v2/models/capped/explain', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4], data: rows(3).flat() }],
    });
    expect(v2.status).toBe(413);
    expect((await call('POST', '/v1/models/capped:explain', { instances: rows(2) })).status).toBe(
      200,
    );
  });
});
