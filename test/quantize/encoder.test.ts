import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleModels } from '../../models/generate.ts';
import { evaluateVariants } from '../../src/ingest/index.ts';
import { type QuantizeResult, quantizeModel } from '../../src/quantize/index.ts';

interface V2Input {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

let fp32: Uint8Array;
let result: QuantizeResult;
let samples: Record<string, ort.Tensor>[];

beforeAll(async () => {
  const { encoder } = await ensureExampleModels();
  fp32 = await readFile(encoder.path);
  result = quantizeModel(fp32);
  const requests = JSON.parse(await readFile(encoder.samplesPath, 'utf8')) as {
    inputs: V2Input[];
  }[];
  samples = requests.map((r) =>
    Object.fromEntries(
      r.inputs.map((i) => {
        expect(i.datatype).toBe('INT64');
        return [
          i.name,
          new ort.Tensor('int64', BigInt64Array.from(i.data.flat(), BigInt), i.shape),
        ];
      }),
    ),
  );
});

describe('the generated MiniLM-shaped encoder', () => {
  it('quantizes every projection and both embedding tables, to at most 0.27× its size', () => {
    const { report, bytes } = result;
    expect(report.status).toBe('applied');
    expect(bytes!.byteLength / fp32.byteLength).toBeLessThanOrEqual(0.27);
    const quantized = report.nodes.filter((n) => n.action === 'quantized');
    expect(quantized.filter((n) => n.opType === 'MatMul')).toHaveLength(6 * 6);
    expect(quantized.filter((n) => n.opType === 'Gather').map((n) => n.node)).toEqual([
      'tok',
      'pos',
    ]);
    // attention's Q·Kᵀ and probs·V multiply two activations: nothing constant to quantize
    const skipped = report.nodes.filter((n) => n.action === 'skipped');
    expect(skipped).toHaveLength(6 * 2);
    for (const n of skipped)
      expect(n.reason).toBe('weight is computed at run time, not a constant');
  });

  it('stays within cosine 0.999 of fp32 on the committed samples', async () => {
    const r = await evaluateVariants({
      fp32Bytes: fp32,
      int8Bytes: result.bytes!,
      samples,
      options: { objective: 'size', runs: 1 },
    });
    expect(r.cosine).toBeGreaterThanOrEqual(0.999);
    expect(r.accept).toBe(true);
  });
});
