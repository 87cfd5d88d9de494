import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeModel,
  graph,
  model,
  node,
  parseModel,
  TensorProto_DataType,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import { quantizeModel } from '../../src/quantize/index.ts';
import {
  cosine,
  floatFeed,
  type GemmSpec,
  gemmModel,
  mlpModel,
  randomFloats,
  runOnce,
} from '../support/quantize-fixtures.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'maas-quantize-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The op types onnxruntime actually runs after its graph optimizations. */
const optimizedOps = async (bytes: Uint8Array, name: string): Promise<string[]> => {
  const path = join(dir, `${name}.optimized.onnx`);
  const session = await ort.InferenceSession.create(bytes, {
    optimizedModelFilePath: path,
    logSeverityLevel: 3,
  });
  await session.release();
  const m = parseModel(await readFile(path));
  return m.graph!.node.map((n) => (n.domain ? `${n.domain}.` : '') + n.opType);
};

const compare = async (fp32: Uint8Array, feeds: Record<string, ort.Tensor>) => {
  const { bytes, report } = quantizeModel(fp32);
  expect(report.status, report.reason).toBe('applied');
  const ref = await runOnce(fp32, feeds);
  const test = await runOnce(bytes!, feeds);
  expect(Object.keys(test)).toEqual(Object.keys(ref));
  const cosines = Object.keys(ref).map((k) => cosine(ref[k]!, test[k]!));
  return { bytes: bytes!, report, cosine: Math.min(...cosines) };
};

describe('quantized models in onnxruntime', () => {
  it('an opset-17 MLP 256→512→256 runs fused, within 0.999 cosine of fp32, at under 0.35× size', async () => {
    const fp32 = mlpModel({ widths: [256, 512, 256] });
    const { bytes, report, cosine } = await compare(fp32, { x: floatFeed([16, 256], 11) });
    expect(cosine).toBeGreaterThanOrEqual(0.999);
    expect(bytes.byteLength / fp32.byteLength).toBeLessThan(0.35);
    expect(report.nodes.map((n) => [n.node, n.action])).toEqual([
      ['layer0/MatMul', 'quantized'],
      ['layer1/MatMul', 'quantized'],
    ]);
    // onnxruntime folds the whole pattern, bias Add included, into its fused int8 kernel
    const ops = await optimizedOps(bytes, 'mlp17');
    expect(ops).toEqual([
      'com.microsoft.DynamicQuantizeMatMul',
      'Relu',
      'com.microsoft.DynamicQuantizeMatMul',
    ]);
  });

  it('an MLP with signed ±64 weights (signedShare) runs fused on u8×s8 kernels, within 0.999 cosine', async () => {
    for (const opset of [17, 10]) {
      const fp32 = mlpModel({ widths: [256, 512, 256], opset });
      const { bytes, report } = quantizeModel(fp32, { signedShare: 1 });
      expect(report.signedWeights).toMatchObject({ weights: 2, of: 2 });
      const feeds = { x: floatFeed([16, 256], 13) };
      const ref = await runOnce(fp32, feeds);
      const test = await runOnce(bytes!, feeds);
      expect(cosine(ref.y!, test.y!)).toBeGreaterThanOrEqual(0.999);
      // the same fused kernel as with uint8 weights (at opset 10 the bias Add stays beside it)
      const ops = await optimizedOps(bytes!, `mlp-signed-${opset}`);
      expect(ops.filter((o) => o === 'com.microsoft.DynamicQuantizeMatMul')).toHaveLength(2);
      expect(ops.filter((o) => o.includes('MatMul') && !o.includes('DynamicQuantize'))).toEqual([]);
    }
  });

  it('an opset-10 MLP runs through com.microsoft DynamicQuantizeMatMul', async () => {
    const fp32 = mlpModel({ widths: [256, 512, 256], opset: 10 });
    const { bytes, cosine } = await compare(fp32, { x: floatFeed([16, 256], 12) });
    expect(cosine).toBeGreaterThanOrEqual(0.999);
    const ops = await optimizedOps(bytes, 'mlp10');
    expect(ops.filter((o) => o === 'com.microsoft.DynamicQuantizeMatMul')).toHaveLength(2);
  });

  const gemms: [string, GemmSpec][] = [
    ['transB=1, bias row, alpha 0.5, beta 2', { k: 128, n: 96, transB: true, alpha: 0.5, beta: 2 }],
    [
      'transA=1, alpha -1.5, beta 0.5 × a C fed at run time',
      {
        k: 128,
        n: 96,
        transA: true,
        alpha: -1.5,
        beta: 0.5,
        bias: 'matrix',
      },
    ],
    [
      'weights and bias inside Constant nodes',
      { k: 128, n: 96, transB: true, constantNodes: true },
    ],
    ['no C', { k: 128, n: 96, bias: 'none' }],
    [
      'opset 10, transB=1, alpha and beta',
      { k: 128, n: 96, transB: true, alpha: 2, beta: 3, opset: 10 },
    ],
    ['opset 9, IR 3, C fed at run time', { k: 128, n: 96, opset: 9, irVersion: 3, bias: 'matrix' }],
  ];
  it.each(gemms)('Gemm with %s matches fp32', async (_, spec) => {
    const batch = 4;
    const feeds: Record<string, ort.Tensor> = {
      x: floatFeed(spec.transA ? [spec.k, batch] : [batch, spec.k], 21),
    };
    if (spec.bias === 'matrix') feeds.C = floatFeed([batch, spec.n], 22);
    const fp32 = gemmModel({ ...spec, batch });
    const { bytes, cosine, report } = await compare(fp32, feeds);
    expect(report.nodes).toEqual([{ node: 'fc', opType: 'Gemm', action: 'quantized' }]);
    expect(cosine).toBeGreaterThanOrEqual(0.999);
    const m = parseModel(bytes);
    expect(m.graph!.node.filter((n) => n.opType === 'Constant')).toEqual([]);
    expect(m.graph!.initializer.some((t) => t.name === 'B')).toBe(false);
  });

  it.each([10, 13])(
    'an embedding Gather feeding a MatMul at opset %i matches fp32',
    async (opset) => {
      const { FLOAT, INT64 } = TensorProto_DataType;
      const fp32 = encodeModel(
        model({
          opset,
          graph: graph({
            nodes: [
              node('Gather', ['table', 'ids'], ['rows'], { axis: 0 }, 'embed'),
              node('MatMul', ['rows', 'w'], ['y'], {}, 'mm'),
            ],
            initializers: [
              tensor('table', FLOAT, [100, 64], randomFloats(6400, 1)),
              tensor('w', FLOAT, [64, 128], randomFloats(8192, 2, 1 / 8)),
            ],
            inputs: [valueInfo('ids', INT64, [4])],
            outputs: [valueInfo('y', FLOAT, [4, 128])],
          }),
        }),
      );
      const ids = new ort.Tensor('int64', BigInt64Array.from([1n, 5n, 99n, 0n]), [4]);
      const { report, cosine } = await compare(fp32, { ids });
      expect(report.nodes.map((n) => [n.node, n.action])).toEqual([
        ['embed', 'quantized'],
        ['mm', 'quantized'],
      ]);
      expect(cosine).toBeGreaterThanOrEqual(0.999);
    },
  );
});
