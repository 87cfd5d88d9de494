import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimKey } from '../../src/ingest/index.ts';
import { readSignature } from '../../src/onnx/index.ts';
import { SCHEME_MATMUL_INTEGER } from '../../src/quantize/index.ts';
import type { HistoryRecord, Manifest, UploadRef } from '../../src/registry/index.ts';
import { sha256Hex } from '../../src/registry/index.ts';
import { type Harness, startHarness } from '../support/ingest-harness.ts';
import { exampleModels } from '../support/models.ts';

/** One real ingest of the generated encoder (the slow part: quantizer + gate), many assertions. */
describe('ingest of the generated encoder', () => {
  let harness: Harness;
  let bytes: Uint8Array;
  let upload: UploadRef;
  let outcome: HistoryRecord;
  let manifest: Manifest;

  beforeAll(async () => {
    harness = await startHarness();
    const { encoder } = await exampleModels();
    bytes = new Uint8Array(await readFile(encoder.path));
    const samples = await readFile(encoder.samplesPath, 'utf8');
    upload = await harness.upload('encoder', 'encoder.onnx', bytes, { samples });
    outcome = await harness.outcome('encoder', upload);
    manifest = await harness.registry.getManifest('encoder', 1);
  });
  afterAll(() => harness?.close());

  it('registers version 1 and serves int8', () => {
    expect(outcome).toMatchObject({ event: 'registered', version: 1, actor: 'ingest' });
    expect(outcome.details).toMatchObject({
      sourceKey: 'incoming/encoder/encoder.onnx',
      etag: upload.etag,
      served: 'int8',
      alias: 'production',
      samples: 'sidecar',
    });
    expect(manifest.served).toBe('int8');
  });

  it('meets the size and accuracy targets and records the latency ratio', () => {
    const q = manifest.quantization;
    expect(q?.status).toBe('applied');
    expect(q?.sizeRatio).toBeLessThanOrEqual(0.27);
    expect(q?.accuracy?.cosine).toBeGreaterThanOrEqual(0.999);
    expect(q?.accuracy?.maxAbsError).toBeGreaterThanOrEqual(0);
    expect(q?.latencyRatio).toBeGreaterThan(0);
    expect(q?.decision).toMatch(/^int8 served/);
    expect(q?.nodesQuantized).toBeGreaterThan(0);
    expect(q?.nodes.length).toBe((q?.nodesQuantized ?? 0) + (q?.nodesSkipped ?? 0));
    // dynamic int8 (uint8 weights, or its largest weights signed within ±64: both keep the
    // accuracy here) or static int8, whichever the gate timed faster; the others are recorded
    // beside it
    expect(q?.scheme).toMatch(/MatMulInteger|^static int8/);
    expect(q?.alternatives?.length).toBe(2);
    const schemes = [q?.scheme, ...(q?.alternatives ?? []).map((a) => a.scheme)];
    expect(schemes).toContain(SCHEME_MATMUL_INTEGER);
    expect(schemes.filter((s) => /MatMulInteger.*signed within ±64/.test(s ?? ''))).toHaveLength(1);
    expect(schemes.filter((s) => s?.startsWith('static int8'))).toHaveLength(1);
    const mixed = q?.scheme?.includes('signed within') ? q : undefined;
    expect(mixed?.signedWeights ?? { weights: 18, of: 36 }).toMatchObject({ weights: 18, of: 36 });
    // the same figures reach the uploader through the outcome record
    expect(outcome.details).toMatchObject({
      sizeRatio: q?.sizeRatio,
      latencyRatio: q?.latencyRatio,
      cosine: q?.accuracy?.cosine,
    });
    console.info(
      `encoder: size ${q?.sizeRatio?.toFixed(3)}x, p50 ${q?.latencyRatio?.toFixed(3)}x, cosine ${q?.accuracy?.cosine.toFixed(5)}`,
    );
  });

  it('writes a manifest with everything docs/design.md lists', async () => {
    const signature = readSignature(bytes);
    expect(manifest).toMatchObject({
      model: 'encoder',
      version: 1,
      source: { key: 'incoming/encoder/encoder.onnx', etag: upload.etag },
      irVersion: signature.irVersion,
      opsetImports: signature.opsetImports,
      producer: signature.producer,
      inputs: signature.inputs,
      outputs: signature.outputs,
    });
    expect(manifest.variants.fp32).toEqual({
      key: 'registry/encoder/1/model.onnx',
      sha256: sha256Hex(bytes),
      bytes: bytes.byteLength,
    });
    expect(manifest.variants.int8?.key).toBe('registry/encoder/1/model.int8.onnx');
    expect(manifest.variants.int8?.bytes).toBeLessThan(bytes.byteLength * 0.27);
    expect(manifest.warmup?.samples).toBeGreaterThan(0);
    expect(manifest.warmup?.p50Ms).toBeGreaterThan(0);
    expect(manifest.warmup?.loadMs).toBeGreaterThan(0);
    expect(Date.parse(manifest.createdAt)).not.toBeNaN();
    expect(manifest.signature?.parameterCount).toBe(signature.parameterCount);
    const int8 = await harness.registry.readVariant('encoder', 1, 'int8', { manifest });
    expect(sha256Hex(int8)).toBe(manifest.variants.int8?.sha256);
  });

  it('makes the first version production and audits it', async () => {
    const aliases = await harness.registry.getAliases('encoder');
    expect(aliases?.aliases).toMatchObject({ production: 1, knownGood: [], rolledBack: [] });
    const history = await harness.registry.history('encoder');
    expect(history.map((r) => r.event)).toEqual(['promoted', 'registered']);
  });

  it('changes nothing when the same event is delivered again', async () => {
    const before = await harness.s3.store.list('registry/encoder/');
    const [record] = harness.records.filter((r) => r.s3.object.key.endsWith('.onnx'));
    expect(record).toBeDefined();
    const results = await harness.deliver(record ? [record, record] : []);
    expect(results.map((r) => r.status)).toEqual(['duplicate', 'duplicate']);
    const after = await harness.s3.store.list('registry/encoder/');
    expect(after.keys.map((k) => [k.key, k.etag])).toEqual(before.keys.map((k) => [k.key, k.etag]));
    expect(await harness.registry.listVersions('encoder')).toEqual([1]);
    const claim = await harness.s3.store.get(claimKey('encoder', upload));
    expect(JSON.parse(new TextDecoder().decode(claim?.body))).toMatchObject({
      state: 'done',
      outcome: { event: 'registered', version: 1 },
    });
  });
});
