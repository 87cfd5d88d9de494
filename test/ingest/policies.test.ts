import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import type { HistoryRecord } from '../../src/registry/index.ts';
import { type Harness, registryKeys, startHarness } from '../support/ingest-harness.ts';
import { exampleModels, tinyModel } from '../support/models.ts';
import { mlpModel, randomFloats } from '../support/quantize-fixtures.ts';

/** V2 request bodies over x [rows, width] whose column `zero` is 0. */
const mlpSamples = (rows: number, width: number, zero?: number) =>
  [1, 2].map((seed) => {
    const data = Array.from(randomFloats(rows * width, seed));
    if (zero !== undefined) for (let i = zero; i < data.length; i += width) data[i] = 0;
    return { inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, width], data }] };
  });

/** y = reshape(x, [3, -1]): fine on 3·k elements, fails on the synthesized [1, 4]. */
const failsOnSynthesizedInputs = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        nodes: [node('Reshape', ['x', 'shape'], ['y'], {}, 'reshape')],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
        outputs: [valueInfo('y', T.FLOAT, [3, -1])],
        initializers: [tensor('shape', T.INT64, [2], [3, -1])],
      }),
      opset: 17,
    }),
  );

describe('ingest decisions and per-upload options', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness?.close());

  const ingest = async (
    name: string,
    file: string,
    bytes: Uint8Array,
    options: Parameters<Harness['upload']>[3] = {},
  ): Promise<HistoryRecord> =>
    harness.outcome(name, await harness.upload(name, file, bytes, options));

  it('serves fp32 with the reason when quantization would hurt accuracy', async () => {
    const bytes = mlpModel({ widths: [256, 512, 256], outlier: 1000 });
    const outcome = await ingest('outliers', 'mlp.onnx', bytes, {
      samples: mlpSamples(8, 256, 0),
    });
    expect(outcome).toMatchObject({ event: 'registered', version: 1 });
    const manifest = await harness.registry.getManifest('outliers', 1);
    expect(manifest.served).toBe('fp32');
    expect(manifest.variants.int8).toBeUndefined();
    expect(manifest.quantization).toMatchObject({ status: 'not-applied' });
    expect(manifest.quantization?.accuracy?.cosine).toBeLessThan(0.999);
    expect(manifest.quantization?.decision).toMatch(
      /^fp32 served: int8 cosine similarity 0\.\d+ is below the minimum 0\.999/,
    );
    expect(manifest.quantization?.reason).toBe(manifest.quantization?.decision);
    expect(outcome.reason).toBe(manifest.quantization?.decision);
    expect(await registryKeys(harness, 'outliers')).not.toContain('1/model.int8.onnx');
  });

  it('respects maas-quantize=off', async () => {
    const bytes = mlpModel({ widths: [256, 512, 256] });
    const outcome = await ingest('no-quantize', 'mlp.onnx', bytes, {
      metadata: { 'maas-quantize': 'off' },
    });
    expect(outcome.details).toMatchObject({ served: 'fp32', samples: 'synthesized' });
    const manifest = await harness.registry.getManifest('no-quantize', 1);
    expect(manifest.served).toBe('fp32');
    expect(manifest.variants.int8).toBeUndefined();
    expect(manifest.quantization).toMatchObject({
      scheme: 'none',
      status: 'not-applied',
      reason: 'maas-quantize=off on the upload',
      nodesQuantized: 0,
    });
  });

  it('keeps fp32 with the quantizer’s reason when nothing is worth quantizing', async () => {
    const { iris } = await exampleModels();
    const outcome = await ingest('iris', 'iris.onnx', await readFile(iris.path), {
      samples: await readFile(iris.samplesPath, 'utf8'),
    });
    expect(outcome.details).toMatchObject({ served: 'fp32', samples: 'sidecar' });
    const manifest = await harness.registry.getManifest('iris', 1);
    expect(manifest.quantization?.decision).toMatch(/^fp32 served: no MatMul, Gemm or Gather/);
    expect(manifest.quantization?.nodes.every((n) => n.action === 'skipped')).toBe(true);
  });

  it('places versions by maas-promote and maas-canary-weight', async () => {
    const version = async (seed: number, metadata?: Record<string, string>) => {
      const outcome = await ingest('policy', `v${seed}.onnx`, tinyModel({ seed }), {
        ...(metadata === undefined ? {} : { metadata }),
      });
      expect(outcome.event).toBe('registered');
      return { outcome, aliases: (await harness.registry.getAliases('policy'))?.aliases };
    };
    const first = await version(1, { 'maas-promote': 'manual' });
    expect(first.outcome.details?.alias).toBe('production');
    expect(first.aliases).toMatchObject({ production: 1, knownGood: [] });

    const uploadedAt = Date.now();
    const second = await version(2);
    expect(second.aliases).toMatchObject({ production: 1, candidate: { version: 2, weight: 0.1 } });
    const bake = Date.parse(second.aliases?.candidate?.bakeUntil ?? '') - uploadedAt;
    expect(bake).toBeGreaterThan(29 * 60_000);
    expect(bake).toBeLessThan(31 * 60_000);

    const third = await version(3, { 'maas-canary-weight': '0.25' });
    expect(third.aliases?.candidate).toMatchObject({ version: 3, weight: 0.25 });

    const fourth = await version(4, { 'maas-promote': 'now' });
    expect(fourth.outcome.details?.alias).toBe('production');
    expect(fourth.aliases).toMatchObject({ production: 4, knownGood: [1] });
    expect(fourth.aliases?.candidate).toBeUndefined();

    const fifth = await version(5, { 'maas-promote': 'manual' });
    expect(fifth.outcome.details?.alias).toBe('none');
    expect(fifth.aliases).toEqual(fourth.aliases);
    expect(await harness.registry.listVersions('policy')).toEqual([1, 2, 3, 4, 5]);
    const events = (await harness.registry.history('policy')).map((r) => `${r.event}:${r.version}`);
    expect(events).toEqual([
      'promoted:1',
      'registered:1',
      'candidate:2',
      'registered:2',
      'candidate:3',
      'registered:3',
      'promoted:4',
      'registered:4',
      'registered:5',
    ]);
  });

  it.each([
    [{ 'maas-promote': 'sometimes' }, /maas-promote="sometimes" is not valid/],
    [{ 'maas-quantize': 'maybe' }, /maas-quantize="maybe" is not valid/],
    [
      { 'maas-canary-weight': '1.5' },
      /maas-canary-weight="1.5" is not valid: set it to a number from 0 to 1/,
    ],
    [{ 'maas-accuracy': 'mse' }, /maas-accuracy="mse" is not valid: set it to `cosine`, `top1`/],
  ])('rejects the invalid option %o and writes nothing else', async (metadata, message) => {
    const name = `bad-${Object.keys(metadata)[0]}`;
    const outcome = await ingest(name, 'tiny.onnx', tinyModel(), { metadata });
    expect(outcome).toMatchObject({ event: 'rejected', details: { code: 'InvalidUploadOption' } });
    expect(outcome.reason).toMatch(message);
    const stored = await registryKeys(harness, name);
    expect(stored.filter((k) => !k.startsWith('uploads/'))).toEqual([
      expect.stringMatching(/^history\/\d+-[0-9a-f]+\.json$/),
    ]);
    expect(await harness.registry.listVersions(name)).toEqual([]);
  });

  it('rejects samples the model cannot take, with the protocol’s reason', async () => {
    const outcome = await ingest('bad-samples', 'tiny.onnx', tinyModel(), {
      samples: [
        { inputs: [{ name: 'nope', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] },
      ],
    });
    expect(outcome).toMatchObject({ event: 'rejected', details: { code: 'InvalidSamples' } });
    expect(outcome.reason).toMatch(
      /incoming\/bad-samples\/tiny\.samples\.json has an unusable sample #1/,
    );
  });

  it('rejects a model that fails its warm-up run on synthesized inputs, showing its signature', async () => {
    const outcome = await ingest('warmup', 'reshape.onnx', failsOnSynthesizedInputs());
    expect(outcome).toMatchObject({
      event: 'rejected',
      details: { code: 'WarmupFailed', samples: 'synthesized' },
    });
    expect(outcome.reason).toMatch(
      /^The model failed on inputs synthesized from its signature \(no samples were uploaded/,
    );
    expect(outcome.reason).not.toContain('sample #');
    expect(outcome.reason).toMatch(/The model's inputs: \S+ \w+ \[[^\]]*\]/);
    expect(outcome.reason).toContain('maas inspect reshape.onnx --template reshape.samples.json');
  });

  it('rejects an upload over the size cap from its HEAD, before downloading it', async () => {
    const small = await startHarness({ settings: { maxModelBytes: 1000 } });
    try {
      const upload = await small.upload('big', 'big.onnx', tinyModel({ paddingFloats: 1000 }));
      const outcome = await small.outcome('big', upload);
      expect(outcome).toMatchObject({ event: 'rejected', details: { code: 'TooLarge' } });
      expect(outcome.reason).toMatch(/^The upload is \d+ bytes, over the 1000 bytes limit/);
    } finally {
      await small.close();
    }
  });
});
