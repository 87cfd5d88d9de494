import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildCnnModel, cnnImages, SMALL_CNN } from '../../models/cnn.ts';
import {
  encodeModel,
  graph,
  type ModelProto,
  model,
  node,
  parseModel,
  TensorProto_DataType,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import {
  type ActivationRange,
  noiseMargins,
  planStatic,
  quantizeStatic,
  rangesWithMargin,
} from '../../src/quantize/index.ts';
import { activationParams } from '../../src/quantize/weights.ts';

const { FLOAT, INT8, INT32, UINT8 } = TensorProto_DataType;

/** Ranges that cover what the small CNN's activations take on `cnnImages` (wide on purpose). */
const wideRanges = (tensors: readonly string[]): Map<string, ActivationRange> =>
  new Map(tensors.map((t) => [t, { min: -20, max: 20 }]));

const quantized = (bytes: Uint8Array | undefined): ModelProto => {
  expect(bytes).toBeInstanceOf(Uint8Array);
  return parseModel(bytes!);
};

const producerOf = (m: ModelProto, name: string) =>
  m.graph!.node.find((n) => n.output.includes(name));
const init = (m: ModelProto, name: string) => m.graph!.initializer.find((t) => t.name === name);
const intAttr = (n: { attribute: { name: string; i: bigint }[] } | undefined, name: string) =>
  Number(n?.attribute.find((a) => a.name === name)?.i ?? -1);

describe('static QDQ quantization', () => {
  const cnn = buildCnnModel(SMALL_CNN);

  it('plans the activations around every Conv, after the Relu that follows it', () => {
    const plan = planStatic(cnn);
    expect(plan.cores).toBe(9);
    expect(plan.tensors).toContain('x');
    // conv0 → BN → Relu: the range is taken after the Relu, where onnxruntime quantizes
    expect(plan.tensors).toContain('conv0.relu');
    expect(plan.tensors).not.toContain('conv0.bn');
    expect(plan.tensors).not.toContain('conv0.out');
    // the logits are the graph output: left float
    expect(plan.tensors).not.toContain('logits');
  });

  it('folds BatchNormalization and feeds each Conv per-channel int8 weights and an int32 bias', () => {
    const m = quantized(quantizeStatic(cnn, wideRanges(planStatic(cnn).tensors)).bytes);
    const g = m.graph!;
    expect(g.node.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    const convs = g.node.filter((n) => n.opType === 'Conv');
    expect(convs).toHaveLength(9);
    for (const conv of convs) {
      const wDq = producerOf(m, conv.input[1]!);
      expect(wDq?.opType).toBe('DequantizeLinear');
      expect(intAttr(wDq, 'axis')).toBe(0);
      const weight = init(m, wDq!.input[0]!);
      const scales = init(m, wDq!.input[1]!);
      // symmetric int8 within ±64, zero point 0: no int16 saturation in u8×s8 kernels
      expect(weight?.dataType).toBe(INT8);
      const q = new Int8Array(
        weight!.rawData.buffer,
        weight!.rawData.byteOffset,
        weight!.rawData.length,
      );
      expect(q.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBe(64);
      const zeros = init(m, wDq!.input[2]!);
      expect(zeros?.dataType).toBe(INT8);
      expect(new Set(zeros?.rawData)).toEqual(new Set([0]));
      // one scale per output channel
      expect(Number(scales?.dims[0])).toBe(Number(weight?.dims[0]));
      const bDq = producerOf(m, conv.input[2]!);
      expect(bDq?.opType).toBe('DequantizeLinear');
      expect(init(m, bDq!.input[0]!)?.dataType).toBe(INT32);
      // the activation reaches the Conv through a QuantizeLinear → DequantizeLinear pair
      const xDq = producerOf(m, conv.input[0]!);
      expect(xDq?.opType).toBe('DequantizeLinear');
      expect(producerOf(m, xDq!.input[0]!)?.opType).toBe('QuantizeLinear');
    }
    // no float weight is left behind
    expect(g.initializer.some((t) => t.name === 'conv0.w')).toBe(false);
    expect(g.input.map((v) => v.name)).toEqual(['x']);
    expect(g.output.map((v) => v.name)).toEqual(['logits']);
  });

  it('puts the QuantizeLinear after a Relu, with zero point 0 so onnxruntime drops the Relu', async () => {
    const ranges = wideRanges(planStatic(cnn).tensors);
    ranges.set('conv0.relu', { min: 0, max: 6 });
    const m = quantized(quantizeStatic(cnn, ranges).bytes);
    const q = m.graph!.node.find(
      (n) => n.opType === 'QuantizeLinear' && n.input[0] === 'conv0.relu',
    );
    expect(q).toBeDefined();
    const zero = init(m, q!.input[2]!);
    expect(zero?.dataType).toBe(UINT8);
    expect(zero?.rawData[0]).toBe(0);
  });

  it('runs in onnxruntime and keeps the fp32 model’s outputs when calibrated', async () => {
    const images = cnnImages(SMALL_CNN.size, 4);
    const feeds = images.map((d) => ({
      x: new ort.Tensor('float32', d, [1, 3, SMALL_CNN.size, SMALL_CNN.size]),
    }));
    const plan = planStatic(cnn);
    // calibrate by hand: expose the planned tensors as outputs of the float model
    const probe = parseModel(cnn);
    for (const t of plan.tensors) probe.graph!.output.push(valueInfo(t, FLOAT));
    const s = await ort.InferenceSession.create(encodeModel(probe));
    const ranges = new Map<string, ActivationRange>();
    const reference: Float32Array[] = [];
    for (const f of feeds) {
      const out = await s.run(f);
      reference.push(out.logits!.data as Float32Array);
      for (const t of plan.tensors) {
        const data = out[t]!.data as Float32Array;
        const seen = ranges.get(t) ?? { min: Infinity, max: -Infinity };
        ranges.set(t, {
          min: Math.min(seen.min, ...data),
          max: Math.max(seen.max, ...data),
        });
      }
    }
    await s.release();
    const q = quantizeStatic(cnn, ranges);
    expect(q.report.status).toBe('applied');
    expect(q.report.sizeRatio).toBeLessThan(0.35);
    const int8 = await ort.InferenceSession.create(q.bytes!);
    for (const [i, f] of feeds.entries()) {
      const a = reference[i]!;
      const b = (await int8.run(f)).logits!.data as Float32Array;
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let k = 0; k < a.length; k++) {
        dot += a[k]! * b[k]!;
        na += a[k]! ** 2;
        nb += b[k]! ** 2;
      }
      expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.99);
    }
    await int8.release();
  });

  it('stores the weights of a Conv whose input has no calibrated range int8, and runs it float', () => {
    const plan = planStatic(cnn);
    const ranges = wideRanges(plan.tensors);
    ranges.delete('x');
    const r = quantizeStatic(cnn, ranges);
    const first = r.report.nodes.find((n) => n.node === 'conv0');
    expect(first).toMatchObject({
      action: 'quantized',
      reason: expect.stringMatching(/weights only/),
    });
    expect(r.report.nodesQuantized).toBe(9);
    const m = quantized(r.bytes);
    const conv0 = m.graph!.node.find((n) => n.name === 'conv0')!;
    // the float input goes straight in; the weight through a DequantizeLinear, the bias as it was
    expect(conv0.input[0]).toBe('x');
    expect(producerOf(m, conv0.input[1]!)?.opType).toBe('DequantizeLinear');
    expect(init(m, conv0.input[2]!)?.dataType).toBe(FLOAT);
  });

  it('uses the com.microsoft QDQ ops below opset 13, where per-channel scales are not standard', () => {
    const old = buildCnnModel({ ...SMALL_CNN, opset: 11 });
    const m = quantized(quantizeStatic(old, wideRanges(planStatic(old).tensors)).bytes);
    const qdq = m.graph!.node.filter((n) => /QuantizeLinear$/.test(n.opType));
    expect(qdq.length).toBeGreaterThan(0);
    expect(qdq.every((n) => n.domain === 'com.microsoft')).toBe(true);
    expect(m.opsetImport.find((o) => o.domain === '')?.version).toBe(11n);
  });

  it('moves an opset 9 model to 10, turning Slice attributes into inputs', async () => {
    const w = tensor(
      'w',
      FLOAT,
      [4, 3, 1, 1],
      Float32Array.from({ length: 12 }, (_, i) => i / 12),
    );
    const bytes = encodeModel(
      model({
        opset: 9,
        graph: graph({
          nodes: [
            node('Conv', ['x', 'w'], ['c'], { kernel_shape: [1, 1] }, 'conv'),
            node('Relu', ['c'], ['r'], {}, 'relu'),
            node('Slice', ['r'], ['y'], { starts: [0], ends: [2], axes: [1] }, 'slice'),
          ],
          initializers: [w],
          inputs: [valueInfo('x', FLOAT, [1, 3, 4, 4])],
          outputs: [valueInfo('y', FLOAT, [1, 2, 4, 4])],
        }),
      }),
    );
    const r = quantizeStatic(
      bytes,
      new Map([
        ['x', { min: -1, max: 1 }],
        ['r', { min: 0, max: 2 }],
      ]),
    );
    const m = quantized(r.bytes);
    expect(m.opsetImport.find((o) => o.domain === '')?.version).toBe(10n);
    const slice = m.graph!.node.find((n) => n.opType === 'Slice');
    expect(slice?.attribute).toEqual([]);
    expect(slice?.input).toHaveLength(4);
    const s = await ort.InferenceSession.create(r.bytes!);
    const out = await s.run({
      x: new ort.Tensor('float32', new Float32Array(48).fill(0.5), [1, 3, 4, 4]),
    });
    expect(out.y!.dims).toEqual([1, 2, 4, 4]);
    await s.release();
  });

  it('refuses an opset 9 model whose TopK would change meaning at opset 10', () => {
    const w = tensor('w', FLOAT, [4, 3, 1, 1], new Float32Array(12).fill(0.1));
    const bytes = encodeModel(
      model({
        opset: 9,
        graph: graph({
          nodes: [
            node('Conv', ['x', 'w'], ['c'], { kernel_shape: [1, 1] }, 'conv'),
            node('Flatten', ['c'], ['f'], {}, 'flatten'),
            node('TopK', ['f'], ['y', 'i'], { k: 2 }, 'topk'),
          ],
          initializers: [w],
          inputs: [valueInfo('x', FLOAT, [1, 3, 4, 4])],
          outputs: [valueInfo('y', FLOAT), valueInfo('i', TensorProto_DataType.INT64)],
        }),
      }),
    );
    const plan = planStatic(bytes);
    expect(plan.cores).toBe(0);
    expect(plan.reason).toMatch(/TopK/);
    expect(quantizeStatic(bytes, new Map()).report).toMatchObject({
      status: 'not-applied',
      reason: expect.stringMatching(/TopK/),
    });
  });
});

describe('static quantization of embedding tables', () => {
  it('stores a Gather’s constant float table int8 and dequantizes only the rows it reads', async () => {
    const vocab = 64;
    const dim = 128;
    const table = tensor(
      'emb',
      FLOAT,
      [vocab, dim],
      Float32Array.from({ length: vocab * dim }, (_, i) => Math.sin(i)),
    );
    const w = tensor(
      'w',
      FLOAT,
      [dim, dim],
      Float32Array.from({ length: dim * dim }, (_, i) => Math.cos(i) / dim),
    );
    const bytes = encodeModel(
      model({
        opset: 13,
        graph: graph({
          nodes: [
            node('Gather', ['emb', 'ids'], ['e'], { axis: 0 }, 'embed'),
            node('MatMul', ['e', 'w'], ['y'], {}, 'proj'),
          ],
          initializers: [table, w],
          inputs: [valueInfo('ids', TensorProto_DataType.INT64, [1, 4])],
          outputs: [valueInfo('y', FLOAT, [1, 4, dim])],
        }),
      }),
    );
    const r = quantizeStatic(bytes, new Map([['e', { min: -1, max: 1 }]]));
    const m = quantized(r.bytes);
    const gather = m.graph!.node.find((n) => n.opType === 'Gather')!;
    expect(init(m, gather.input[0]!)?.dataType).toBe(INT8);
    expect(m.graph!.initializer.some((t) => t.name === 'emb')).toBe(false);
    // the dequantized rows keep their name, then get the activation's own Q/DQ pair for the MatMul
    const dq = producerOf(m, 'e');
    expect(dq?.opType).toBe('DequantizeLinear');
    expect(
      r.report.nodes
        .filter((n) => n.action === 'quantized')
        .map((n) => n.opType)
        .sort(),
    ).toEqual(['Gather', 'MatMul']);
    const s = await ort.InferenceSession.create(r.bytes!);
    const out = await s.run({
      ids: new ort.Tensor('int64', BigInt64Array.of(1n, 2n, 3n, 63n), [1, 4]),
    });
    expect(out.y!.dims).toEqual([1, 4, dim]);
    await s.release();
  });
});

describe('activation parameters and noise margins', () => {
  it('represents 0 exactly, whatever the range', () => {
    for (const [min, max] of [
      [-1, 3],
      [0.5, 2],
      [-4, -1],
      [0, 0],
    ] as const) {
      const { scale, zeroPoint } = activationParams(min, max);
      expect(Number.isInteger(zeroPoint)).toBe(true);
      expect(zeroPoint).toBeGreaterThanOrEqual(0);
      expect(zeroPoint).toBeLessThanOrEqual(255);
      expect(scale).toBeGreaterThan(0);
    }
    expect(activationParams(0, 6).zeroPoint).toBe(0);
  });

  it('drops the activations whose weak channels sit within a few rounding steps', () => {
    const ranges = new Map<string, ActivationRange>([
      ['even', { min: -1, max: 1 }],
      ['skewed', { min: -100, max: 100 }],
    ]);
    const rms = new Map([
      ['even', Float64Array.from({ length: 10 }, () => 0.5)],
      // one loud channel sets the range; the other nine are a fraction of one step
      ['skewed', Float64Array.from({ length: 10 }, (_, i) => (i === 0 ? 50 : 0.1))],
    ]);
    const margins = noiseMargins(ranges, rms);
    expect(margins.get('even')!).toBeGreaterThan(100);
    expect(margins.get('skewed')!).toBeLessThan(1);
    expect([...rangesWithMargin(ranges, margins, 10).keys()]).toEqual(['even']);
    expect([...rangesWithMargin(ranges, margins, 0).keys()]).toEqual(['even', 'skewed']);
  });
});
