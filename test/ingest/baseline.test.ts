import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleMeans } from '../../src/ingest/baseline.ts';
import { type Harness, startHarness } from '../support/ingest-harness.ts';
import { exampleModels, readJson, tinyModel, type V2Tensor } from '../support/models.ts';

const spec = (name: string, shape: number[]) => ({ name, datatype: 'FP32' as const, shape });

describe('sampleMeans', () => {
  it('averages every element position over the rows of every sample', () => {
    const feeds = [
      { x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [2, 2]) },
      { x: new ort.Tensor('float32', Float32Array.of(5, 6), [1, 2]) },
    ];
    expect(sampleMeans(feeds, [spec('x', [-1, 2])])).toEqual({
      x: { samples: 2, mean: 3.5, shape: [2], elements: [3, 4] },
    });
  });

  it('keeps only the overall mean when samples differ in shape (sequences of any length)', () => {
    const feeds = [
      { ids: new ort.Tensor('int64', BigInt64Array.of(2n, 4n), [1, 2]) },
      { ids: new ort.Tensor('int64', BigInt64Array.of(6n, 8n, 10n, 12n), [1, 4]) },
    ];
    const means = sampleMeans(feeds, [{ name: 'ids', datatype: 'INT64', shape: [-1, -1] }]);
    expect(means).toEqual({ ids: { samples: 2, mean: 7 } });
  });

  it('leaves out inputs that are not numbers', () => {
    const feeds = [{ s: new ort.Tensor('string', ['a'], [1]) }];
    expect(sampleMeans(feeds, [{ name: 's', datatype: 'BYTES', shape: [1] }])).toEqual({});
  });
});

describe('ingest records the samples mean in the manifest', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('records per-input means of the uploaded samples (Iris)', async () => {
    const iris = (await exampleModels()).iris;
    const samples = await readJson<{ inputs: V2Tensor[] }[]>(iris.samplesPath);
    const upload = await harness.upload('iris', 'iris.onnx', await readFile(iris.path), {
      samples,
      metadata: { 'maas-quantize': 'off' },
    });
    expect((await harness.outcome('iris', upload)).event).toBe('registered');
    const manifest = await harness.registry.getManifest('iris', 1);
    const rows = samples.flatMap((s) => s.inputs[0]?.data.map(Number) ?? []);
    const expected = [0, 1, 2, 3].map((j) => {
      const column = rows.filter((_, i) => i % 4 === j);
      return column.reduce((a, b) => a + b, 0) / column.length;
    });
    const mean = manifest.sampleMeans?.input;
    expect(mean?.shape).toEqual([4]);
    expect(mean?.samples).toBe(samples.length);
    mean?.elements?.forEach((v, j) => {
      expect(v).toBeCloseTo(expected[j] ?? Number.NaN, 5);
    });
  });

  it('records none when ingest had to synthesize its samples', async () => {
    const upload = await harness.upload('tiny', 'tiny.onnx', tinyModel(), {
      metadata: { 'maas-quantize': 'off' },
    });
    expect((await harness.outcome('tiny', upload)).event).toBe('registered');
    expect((await harness.registry.getManifest('tiny', 1)).sampleMeans).toBeUndefined();
  });
});
