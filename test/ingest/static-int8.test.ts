import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCnnModel, type CnnSpec, cnnImages } from '../../models/cnn.ts';
import type { Manifest } from '../../src/registry/index.ts';
import { type Harness, startHarness } from '../support/ingest-harness.ts';

/** Big enough that int8 convolutions beat fp32 clearly, small enough for a quick ingest. */
const CNN: CnnSpec = { size: 64, widths: [32, 64, 128], blocks: 1, classes: 10 };

const samples = (count: number) =>
  cnnImages(CNN.size, count).map((data) => ({
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, CNN.size, CNN.size], data: [...data] }],
  }));

/** One ingest of a generated ResNet-style CNN through the real upload path (local S3, handler). */
describe('ingest of a convolutional model with samples', () => {
  let harness: Harness;
  let manifest: Manifest;
  let top1: Manifest;

  beforeAll(async () => {
    harness = await startHarness();
    const bytes = buildCnnModel(CNN);
    const upload = await harness.upload('cnn', 'cnn.onnx', bytes, { samples: samples(6) });
    const outcome = await harness.outcome('cnn', upload);
    expect(outcome.event).toBe('registered');
    manifest = await harness.registry.getManifest('cnn', 1);
    const again = await harness.upload('cnn-top1', 'cnn.onnx', bytes, {
      samples: samples(6),
      metadata: { 'maas-accuracy': 'top1' },
    });
    expect((await harness.outcome('cnn-top1', again)).event).toBe('registered');
    top1 = await harness.registry.getManifest('cnn-top1', 1);
  }, 240_000);
  afterAll(() => harness?.close());

  it('serves the static int8 variant, calibrated on the uploaded samples, that passed the gate', () => {
    const q = manifest.quantization;
    expect(manifest.served).toBe('int8');
    expect(manifest.variants.int8).toBeDefined();
    expect(q?.scheme).toMatch(/^static int8/);
    expect(q?.status).toBe('applied');
    expect(q?.decision).toMatch(/^int8 served/);
    expect(q?.accuracy?.cosine).toBeGreaterThanOrEqual(0.999);
    expect(q?.latencyRatio).toBeLessThanOrEqual(1);
    expect(q?.sizeRatio).toBeLessThan(0.3);
    expect(q?.calibration).toMatchObject({ source: 'sidecar', samples: 3 });
    expect(q?.nodesQuantized).toBe(q?.nodes.filter((n) => n.opType === 'Conv').length);
    expect(q?.accuracyTest).toBe('cosine>=0.999');
    console.info(
      `cnn ${CNN.size}px: size ${q?.sizeRatio?.toFixed(3)}x, p50 ${q?.latencyRatio?.toFixed(3)}x, cosine ${q?.accuracy?.cosine.toFixed(5)}`,
    );
  });

  it('records the dynamic scheme it also considered, and why it was not used', () => {
    const dynamic = manifest.quantization?.alternatives?.find((a) =>
      a.scheme.startsWith('dynamic'),
    );
    expect(dynamic).toMatchObject({
      accepted: false,
      decision: expect.stringMatching(
        /^not timed: no MatMul, Gemm or Gather node has a constant float32 weight/,
      ),
    });
  });

  it('judges by top-1 agreement when the upload asks for it, and records the test', () => {
    expect(top1.served).toBe('int8');
    expect(top1.quantization?.accuracyTest).toBe('top1>=0.98');
    expect(top1.quantization?.accuracy?.top1Agreement).toBeGreaterThanOrEqual(0.98);
    expect(top1.quantization?.decision).toMatch(/top-1 agreement/);
  });
});
