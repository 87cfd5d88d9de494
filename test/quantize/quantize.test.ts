import { describe, expect, it } from 'vitest';
import {
  encodeModel,
  graph,
  type ModelProto,
  model,
  type NodeProto,
  node,
  parseModel,
  type TensorProto,
  TensorProto_DataType,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import {
  quantizeModel,
  SCHEME_DYNAMIC_QUANTIZE_MATMUL,
  SCHEME_MATMUL_INTEGER,
} from '../../src/quantize/index.ts';
import { mlpModel, noMatMulModel, randomFloats } from '../support/quantize-fixtures.ts';

const { FLOAT, INT8, INT64, UINT8 } = TensorProto_DataType;

const ops = (m: ModelProto) =>
  m.graph!.node.map((n) => (n.domain ? `${n.domain}.` : '') + n.opType);
const initializer = (m: ModelProto, name: string) =>
  m.graph!.initializer.find((t) => t.name === name);
const quantizedModel = (bytes: Uint8Array | undefined): ModelProto => {
  expect(bytes).toBeInstanceOf(Uint8Array);
  return parseModel(bytes!);
};

const w = (name: string, rows: number, cols: number, seed = 1): TensorProto =>
  tensor(name, FLOAT, [rows, cols], randomFloats(rows * cols, seed));

/** x [2, k] through `nodes` to y; `extraOutputs` are float outputs of unknown shape */
const build = (
  nodes: NodeProto[],
  initializers: TensorProto[],
  k: number,
  options: {
    opset?: number;
    irVersion?: number;
    extraInputs?: string[];
    extraOutputs?: string[];
  } = {},
): Uint8Array =>
  encodeModel(
    model({
      opset: options.opset ?? 17,
      ...(options.irVersion === undefined ? {} : { irVersion: options.irVersion }),
      graph: graph({
        nodes,
        initializers,
        inputs: [
          valueInfo('x', FLOAT, [2, k]),
          ...(options.extraInputs ?? []).map((n) => valueInfo(n, FLOAT)),
        ],
        outputs: [
          valueInfo('y', FLOAT),
          ...(options.extraOutputs ?? []).map((n) => valueInfo(n, FLOAT)),
        ],
      }),
    }),
  );

describe('quantizeModel', () => {
  it('rewrites an opset-17 MLP into DynamicQuantizeLinear + MatMulInteger, keeping its interface', () => {
    const fp32 = mlpModel({ widths: [256, 512, 256] });
    const { bytes, report } = quantizeModel(fp32);
    const before = parseModel(fp32);
    const after = quantizedModel(bytes);

    expect(report).toMatchObject({
      scheme: SCHEME_MATMUL_INTEGER,
      status: 'applied',
      nodesQuantized: 2,
      nodesSkipped: 0,
      nodes: [
        { node: 'layer0/MatMul', opType: 'MatMul', action: 'quantized' },
        { node: 'layer1/MatMul', opType: 'MatMul', action: 'quantized' },
      ],
    });
    expect(report.sizeRatio).toBeCloseTo(bytes!.byteLength / fp32.byteLength, 10);
    expect(report.quantizeMs).toBeGreaterThan(0);
    expect(ops(after).filter((o) => o === 'MatMulInteger')).toHaveLength(2);
    expect(ops(after)).not.toContain('MatMul');
    expect(after.graph!.input).toEqual(before.graph!.input);
    expect(after.graph!.output).toEqual(before.graph!.output);
    expect(after.opsetImport).toEqual(before.opsetImport);
    expect(after.irVersion).toBe(before.irVersion);
    // the float weights are gone, replaced by int8 values [K, N] stored as uint8 around zero
    // point 128 (no int16 saturation in onnxruntime's x86 kernels) and one scale per channel
    expect(initializer(after, 'w0')).toBeUndefined();
    expect(initializer(after, 'w1')).toBeUndefined();
    const q0 = initializer(after, 'w0_quantized');
    expect(q0?.dataType).toBe(UINT8);
    expect(q0?.dims).toEqual([256n, 512n]);
    const z0 = initializer(after, 'w0_zero_point');
    expect([z0?.dataType, [...(z0?.rawData ?? [])]]).toEqual([UINT8, [128]]);
    expect(after.graph!.node.find((n) => n.opType === 'MatMulInteger')?.input).toEqual([
      expect.any(String),
      'w0_quantized',
      expect.any(String),
      'w0_zero_point',
    ]);
    // symmetric: every stored value is within 128 ± 127, and each column reaches an end of it
    const values = q0!.rawData;
    expect(values.reduce((m, v) => Math.min(m, v), 255)).toBeGreaterThanOrEqual(1);
    for (const c of [0, 1, 511]) {
      let reach = 0;
      for (let r = 0; r < 256; r++) reach = Math.max(reach, Math.abs(values[r * 512 + c]! - 128));
      expect(reach).toBe(127);
    }
    expect(initializer(after, 'w0_scale')?.dims).toEqual([512n]);
    // the biases the MLP adds after each MatMul are untouched, and still read by their Add
    expect(initializer(after, 'b0')).toEqual(initializer(before, 'b0'));
  });

  it('stores the largest weights signed within ±64 for signedShare, the others uint8 around 128', () => {
    // weights of 131072, 65536 and 8192 elements: 0.64, 0.96 and 1 of the whole, cumulated
    const fp32 = mlpModel({ widths: [256, 512, 128, 64] });
    const signed = (name: string, m: ModelProto, k: number, n: number) => {
      const q = initializer(m, `${name}_quantized`);
      const z = initializer(m, `${name}_zero_point`);
      if (q?.dataType === UINT8) {
        expect([z?.dataType, [...(z?.rawData ?? [])]]).toEqual([UINT8, [128]]);
        return false;
      }
      expect(q?.dataType).toBe(INT8);
      expect([z?.dataType, [...(z?.rawData ?? [])]]).toEqual([INT8, [0]]);
      const values = new Int8Array(q!.rawData.buffer, q!.rawData.byteOffset, k * n);
      // symmetric within ±64, and each column reaches an end of it
      for (const c of [0, n - 1]) {
        let reach = 0;
        for (let r = 0; r < k; r++) reach = Math.max(reach, Math.abs(values[r * n + c]!));
        expect(reach).toBe(64);
      }
      return true;
    };
    const cases = [
      { share: 0.5, expected: [true, false, false], held: 131072 / 204800 },
      { share: 0.75, expected: [true, true, false], held: 196608 / 204800 },
      { share: 1, expected: [true, true, true], held: 1 },
    ];
    for (const { share, expected, held } of cases) {
      const { bytes, report } = quantizeModel(fp32, { signedShare: share });
      const after = quantizedModel(bytes);
      expect([
        signed('w0', after, 256, 512),
        signed('w1', after, 512, 128),
        signed('w2', after, 128, 64),
      ]).toEqual(expected);
      const weights = expected.filter(Boolean).length;
      expect(report.signedWeights).toEqual({ weights, of: 3, share: held });
      expect(report.scheme).toContain(
        `the ${weights} largest of 3, ${Math.round(held * 100)}% of weight elements, signed within ±64`,
      );
    }
    // without the option nothing is signed, and the report says nothing of it
    const plain = quantizeModel(fp32);
    expect(plain.report.scheme).toBe(SCHEME_MATMUL_INTEGER);
    expect(plain.report.signedWeights).toBeUndefined();
    expect(initializer(quantizedModel(plain.bytes), 'w0_quantized')?.dataType).toBe(UINT8);
  });

  it('reports as signed only the weights it stored signed: a largest one left float counts in neither figure', () => {
    // the largest weight (64×192) holds a NaN, so it stays float; the smaller one (64×96) is int8
    const values = randomFloats(64 * 192, 3);
    values[100] = Number.NaN;
    const fp32 = build(
      [
        node('MatMul', ['x', 'n'], ['h'], {}, 'mm_nan'),
        node('MatMul', ['x', 'w'], ['y'], {}, 'mm'),
      ],
      [tensor('n', FLOAT, [64, 192], values), w('w', 64, 96)],
      64,
      { extraOutputs: ['h'] },
    );
    // share 0.5 picks the NaN weight alone: nothing is stored signed, and the report says so
    const half = quantizeModel(fp32, { signedShare: 0.5 });
    const halfModel = quantizedModel(half.bytes);
    expect(initializer(halfModel, 'w_quantized')?.dataType).toBe(UINT8);
    expect(half.report.signedWeights).toBeUndefined();
    expect(half.report.scheme).toBe(SCHEME_MATMUL_INTEGER);
    // share 1 signs the one weight quantized: 1 of 1, all of the quantized weight elements
    const all = quantizeModel(fp32, { signedShare: 1 });
    expect(initializer(quantizedModel(all.bytes), 'w_quantized')?.dataType).toBe(INT8);
    expect(all.report.signedWeights).toEqual({ weights: 1, of: 1, share: 1 });
    expect(all.report.scheme).toContain('the 1 largest of 1, 100% of weight elements');

    // a Gemm given up on late (its bias) drops the int8 weight it had made signed
    const late = build(
      [
        node('MatMul', ['x', 'w'], ['h'], {}, 'mm'),
        node('Gemm', ['h', 'B', 'C'], ['y'], { beta: { f: 2 } }, 'fc'),
      ],
      [w('w', 64, 128), w('B', 128, 64, 2)],
      64,
      { opset: 6, extraInputs: ['C'] },
    );
    const lateResult = quantizeModel(late, { signedShare: 1 });
    expect(initializer(quantizedModel(lateResult.bytes), 'w_quantized')?.dataType).toBe(INT8);
    expect(lateResult.report.signedWeights).toEqual({ weights: 1, of: 1, share: 1 });
  });

  it('uses com.microsoft DynamicQuantizeMatMul below opset 11 and never raises the ai.onnx opset', () => {
    const { bytes, report } = quantizeModel(mlpModel({ widths: [256, 512, 256], opset: 10 }));
    const after = quantizedModel(bytes);
    expect(report.scheme).toBe(SCHEME_DYNAMIC_QUANTIZE_MATMUL);
    expect(ops(after).filter((o) => o === 'com.microsoft.DynamicQuantizeMatMul')).toHaveLength(2);
    expect(ops(after)).not.toContain('DynamicQuantizeLinear');
    expect(after.opsetImport.map((o) => [o.domain, o.version])).toEqual([
      ['', 10n],
      ['com.microsoft', 1n],
    ]);
  });

  it('skips weights below minElements with the reason, and returns no bytes when none is left', () => {
    const { bytes, report } = quantizeModel(mlpModel({ widths: [16, 32, 8] }));
    expect(bytes).toBeUndefined();
    expect(report.status).toBe('not-applied');
    expect(report.reason).toMatch(/no MatMul, Gemm or Gather node/);
    expect(report.nodes).toEqual([
      {
        node: 'layer0/MatMul',
        opType: 'MatMul',
        action: 'skipped',
        reason: 'weight has 512 elements, below minElements 4096',
      },
      {
        node: 'layer1/MatMul',
        opType: 'MatMul',
        action: 'skipped',
        reason: 'weight has 256 elements, below minElements 4096',
      },
    ]);
    expect(
      quantizeModel(mlpModel({ widths: [16, 32, 8] }), { minElements: 300 }).report,
    ).toMatchObject({ nodesQuantized: 1, nodesSkipped: 1 });
  });

  it('leaves the nodes named in excludeNodes in float', () => {
    const { bytes, report } = quantizeModel(mlpModel({ widths: [256, 512, 256] }), {
      excludeNodes: ['layer1/MatMul'],
    });
    const after = quantizedModel(bytes);
    expect(report.nodes[1]).toEqual({
      node: 'layer1/MatMul',
      opType: 'MatMul',
      action: 'skipped',
      reason: 'excluded by options.excludeNodes',
    });
    expect(ops(after)).toContain('MatMul');
    expect(initializer(after, 'w1')?.dataType).toBe(FLOAT);
    expect(initializer(after, 'w0')).toBeUndefined();
  });

  it('returns no bytes for a model without MatMul or Gemm, nor for its own int8 output', () => {
    const none = quantizeModel(noMatMulModel());
    expect(none.bytes).toBeUndefined();
    expect(none.report).toMatchObject({ status: 'not-applied', nodes: [], nodesQuantized: 0 });
    expect(none.report.reason).toMatch(/no MatMul or Gemm node/);

    const once = quantizeModel(mlpModel({ widths: [256, 512, 256] }));
    const twice = quantizeModel(once.bytes!);
    expect(twice.bytes).toBeUndefined();
    expect(twice.report.status).toBe('not-applied');
  });

  it('reports MatMuls whose B is computed at run time or is the constant A', () => {
    const fp32 = build(
      [
        node('Transpose', ['x'], ['xt'], {}, 'xt'),
        node('MatMul', ['x', 'xt'], ['gram'], {}, 'gram'),
        node('MatMul', ['w', 'gram'], ['y'], {}, 'left'),
      ],
      [w('w', 64, 2)],
      64,
    );
    const { bytes, report } = quantizeModel(fp32, { minElements: 1 });
    expect(bytes).toBeUndefined();
    expect(report.nodes.map((n) => n.reason)).toEqual([
      'weight is computed at run time, not a constant',
      'the constant is input A; only a constant B is quantized',
    ]);
  });

  it('reads weights from float_data and from raw data at an odd byte offset alike', () => {
    const aligned = mlpModel({ widths: [64, 128, 64] });
    const expected = quantizeModel(aligned).bytes;

    const odd = new Uint8Array(aligned.byteLength + 1).subarray(1);
    odd.set(aligned);
    const offsets = parseModel(odd).graph!.initializer.map((t) => t.rawData.byteOffset % 4);
    expect(offsets.some((o) => o !== 0)).toBe(true);
    expect(quantizeModel(odd).bytes).toEqual(expected);

    const m = parseModel(aligned);
    for (const t of m.graph!.initializer.filter((i) => i.name.startsWith('w'))) {
      t.floatData = Array.from(new Float32Array(t.rawData.slice().buffer));
      t.rawData = new Uint8Array(0);
    }
    expect(quantizeModel(encodeModel(m)).bytes).toEqual(expected);
  });

  it('stores a weight shared by two MatMuls once and folds a Transpose in front of a weight', () => {
    const fp32 = build(
      [
        node('MatMul', ['x', 'w'], ['a'], {}, 'first'),
        node('MatMul', ['x', 'w'], ['b'], {}, 'second'),
        node('Transpose', ['v'], ['vt'], { perm: [1, 0] }, 'vt'),
        node('MatMul', ['x', 'vt'], ['c'], {}, 'third'),
        node('Sum', ['a', 'b', 'c'], ['y']),
      ],
      [w('w', 64, 96), w('v', 96, 64, 2)],
      64,
    );
    const after = quantizedModel(quantizeModel(fp32).bytes);
    const names = after.graph!.initializer.map((t) => `${t.name}:${t.dims.join('x')}`);
    expect(names.sort()).toEqual([
      'v_quantized:64x96',
      'v_scale:96',
      'v_zero_point:',
      'w_quantized:64x96',
      'w_scale:96',
      'w_zero_point:',
    ]);
    expect(ops(after)).not.toContain('Transpose');
  });

  it('keeps a float weight that another node still reads, next to its int8 copy', () => {
    const fp32 = build(
      [node('MatMul', ['x', 'w'], ['y'], {}, 'mm'), node('Relu', ['w'], ['w_relu'])],
      [w('w', 64, 96)],
      64,
      { extraOutputs: ['w_relu'] },
    );
    const after = quantizedModel(quantizeModel(fp32).bytes);
    expect(initializer(after, 'w')?.dataType).toBe(FLOAT);
    expect(initializer(after, 'w_quantized')?.dataType).toBe(UINT8);
  });

  it('skips weights callers may override (graph inputs from IR 4 on) and non-finite weights', () => {
    const overridable = build([node('MatMul', ['x', 'w'], ['y'], {}, 'mm')], [w('w', 64, 96)], 64, {
      irVersion: 8,
      extraInputs: ['w'],
    });
    expect(quantizeModel(overridable).report.nodes[0]?.reason).toBe(
      'weight is also a graph input, so callers may override it',
    );
    // before IR 4 every initializer is also an input, and is still a constant
    const ir3 = build([node('MatMul', ['x', 'w'], ['y'], {}, 'mm')], [w('w', 64, 96)], 64, {
      opset: 8,
      irVersion: 3,
      extraInputs: ['w'],
    });
    const after = quantizedModel(quantizeModel(ir3).bytes);
    expect(after.graph!.input.map((i) => i.name)).toEqual(['x']);

    const values = randomFloats(64 * 96, 3);
    values[100] = Number.NaN;
    const nan = build(
      [node('MatMul', ['x', 'w'], ['y'], {}, 'mm')],
      [tensor('w', FLOAT, [64, 96], values)],
      64,
    );
    expect(quantizeModel(nan).report.nodes[0]?.reason).toBe('weight contains NaN or Infinity');
  });

  it('lists MatMuls inside subgraphs as left in float', () => {
    const branch = (out: string) =>
      graph({
        nodes: [node('MatMul', ['x', 'w'], [out], {}, `${out}/MatMul`)],
        inputs: [],
        outputs: [valueInfo(out, FLOAT)],
      });
    const fp32 = encodeModel(
      model({
        opset: 17,
        graph: graph({
          nodes: [
            node(
              'If',
              ['flag'],
              ['y'],
              { then_branch: branch('t'), else_branch: branch('e') },
              'if',
            ),
          ],
          initializers: [w('w', 64, 96)],
          inputs: [
            valueInfo('x', FLOAT, [2, 64]),
            valueInfo('flag', TensorProto_DataType.BOOL, []),
          ],
          outputs: [valueInfo('y', FLOAT)],
        }),
      }),
    );
    const { bytes, report } = quantizeModel(fp32);
    expect(bytes).toBeUndefined();
    expect(report.nodes).toEqual([
      {
        node: 't/MatMul',
        opType: 'MatMul',
        action: 'skipped',
        reason: 'inside a subgraph of If if: left in float',
      },
      {
        node: 'e/MatMul',
        opType: 'MatMul',
        action: 'skipped',
        reason: 'inside a subgraph of If if: left in float',
      },
    ]);
  });

  it('stores constant float Gather tables int8 per tensor, dequantizing only the gathered rows', () => {
    const fp32 = encodeModel(
      model({
        opset: 17,
        graph: graph({
          nodes: [
            node('Gather', ['table', 'ids'], ['rows'], { axis: 0 }, 'embed'),
            node('Gather', ['shape_like', 'ids'], ['ints'], {}, 'ints'),
            node('Identity', ['rows'], ['y']),
          ],
          initializers: [w('table', 100, 64), tensor('shape_like', INT64, [3], [1, 2, 3])],
          inputs: [valueInfo('ids', INT64, [4])],
          outputs: [valueInfo('y', FLOAT, [4, 64]), valueInfo('ints', INT64, [4])],
        }),
      }),
    );
    const { bytes, report } = quantizeModel(fp32);
    const after = quantizedModel(bytes);
    expect(report.nodes).toEqual([{ node: 'embed', opType: 'Gather', action: 'quantized' }]);
    expect(ops(after)).toEqual(['Gather', 'DequantizeLinear', 'Gather', 'Identity']);
    expect(initializer(after, 'table')).toBeUndefined();
    expect(initializer(after, 'table_quantized')?.dims).toEqual([100n, 64n]);
    expect(initializer(after, 'table_scale')?.dims).toEqual([]);
  });

  it('drops the int8 weight of a Gemm it gave up on late (its bias), leaving the Gemm whole', () => {
    const fp32 = build(
      [
        node('MatMul', ['x', 'w'], ['h'], {}, 'mm'),
        node('Gemm', ['h', 'B', 'C'], ['y'], { beta: { f: 2 } }, 'fc'),
      ],
      [w('w', 64, 128), w('B', 128, 64, 2)],
      64,
      { opset: 6, extraInputs: ['C'] },
    );
    const { bytes, report } = quantizeModel(fp32);
    expect(report.nodes.map((n) => [n.node, n.action, n.reason])).toEqual([
      ['mm', 'quantized', undefined],
      ['fc', 'skipped', 'Gemm C is not a constant row vector, and opset < 7 predates broadcasting'],
    ]);
    const after = quantizedModel(bytes);
    expect(initializer(after, 'B')?.dataType).toBe(FLOAT);
    expect(after.graph!.initializer.map((t) => t.name).sort()).toEqual([
      'B',
      'w_quantized',
      'w_scale',
      'w_zero_point',
    ]);
  });
});
