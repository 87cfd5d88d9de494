import { create, equals } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProtoSchema } from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  AttributeProto_AttributeType as A,
  attribute,
  DATATYPES,
  datatypeToElemType,
  elemTypeToDatatype,
  encodeModel,
  graph,
  InvalidModelError,
  model,
  node,
  parseModel,
  TensorProto_DataType as T,
  type TensorValues,
  tensor,
  tensorToFloat32,
  valueInfo,
} from '../../src/onnx/index.ts';
import { gaussian, mulberry32 } from '../../src/util/index.ts';

/** A model that returns the initializer `c` through Identity, so onnxruntime decodes our bytes. */
const constantModel = (dataType: number, dims: number[], values: TensorValues): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        nodes: [node('Identity', ['c'], ['y'])],
        inputs: [],
        outputs: [valueInfo('y', dataType, dims)],
        initializers: [tensor('c', dataType, dims, values)],
      }),
      opset: 17,
    }),
  );

const runConstant = async (bytes: Uint8Array): Promise<ort.Tensor> => {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = (await session.run({})).y;
    if (!out) throw new Error('no output y');
    return out;
  } finally {
    await session.release();
  }
};

describe('tensor()', () => {
  const cases: [string, number, TensorValues, ArrayLike<unknown>][] = [
    ['float32', T.FLOAT, [1.5, -2.25, 3e-8, 65504], Float32Array.of(1.5, -2.25, 3e-8, 65504)],
    ['float64', T.DOUBLE, [Math.PI, -1e300, 0, 1], [Math.PI, -1e300, 0, 1]],
    // half bits for 1, -2, 0.5, 65504
    [
      'float16',
      T.FLOAT16,
      Uint16Array.of(0x3c00, 0xc000, 0x3800, 0x7bff),
      [0x3c00, 0xc000, 0x3800, 0x7bff],
    ],
    ['int8', T.INT8, [-128, -1, 0, 127], [-128, -1, 0, 127]],
    ['uint8', T.UINT8, [0, 1, 128, 255], [0, 1, 128, 255]],
    ['int16', T.INT16, [-32768, -1, 2, 32767], [-32768, -1, 2, 32767]],
    ['uint16', T.UINT16, [0, 1, 40000, 65535], [0, 1, 40000, 65535]],
    ['int32', T.INT32, [-(2 ** 31), -1, 7, 2 ** 31 - 1], [-(2 ** 31), -1, 7, 2 ** 31 - 1]],
    ['uint32', T.UINT32, [0, 1, 2 ** 31, 2 ** 32 - 1], [0, 1, 2 ** 31, 2 ** 32 - 1]],
    [
      'int64',
      T.INT64,
      [-(2n ** 63n), -1n, 5, 2n ** 63n - 1n],
      [-(2n ** 63n), -1n, 5n, 2n ** 63n - 1n],
    ],
    ['uint64', T.UINT64, [0n, 1, 2n ** 63n, 2n ** 64n - 1n], [0n, 1n, 2n ** 63n, 2n ** 64n - 1n]],
    // onnxruntime hands bools back as bytes
    ['bool', T.BOOL, [true, false, false, true], [1, 0, 0, 1]],
    ['string', T.STRING, ['a', '', 'héllo', '∑'], ['a', '', 'héllo', '∑']],
  ];

  it.each(cases)(
    'encodes %s values that onnxruntime reads back exactly',
    async (_, type, values, expected) => {
      const out = await runConstant(constantModel(type, [2, 2], values));
      expect(out.dims).toEqual([2, 2]);
      const data =
        out.type === 'float16' ? new Uint16Array((out.data as Uint16Array).buffer) : out.data;
      expect(Array.from(data as ArrayLike<unknown>)).toEqual(Array.from(expected));
    },
  );

  it('refuses values that do not match the dims', () => {
    expect(() => tensor('w', T.FLOAT, [2, 3], [1, 2, 3])).toThrow(/3 values for dims \[2, 3\]/);
  });
});

describe('attribute()', () => {
  it('infers attribute types from plain values and honours explicit wrappers', () => {
    const g = graph({ nodes: [], inputs: [], outputs: [] });
    const t = tensor('t', T.FLOAT, [1], [1]);
    const types = Object.fromEntries(
      (
        [
          ['int', 3],
          ['float', 0.5],
          ['forcedFloat', { f: 2 }],
          ['forcedInt', { i: 2n }],
          ['ints', [1, 2, 3]],
          ['floats', [0.5, 1]],
          ['forcedFloats', { floats: [1, 2] }],
          ['string', 'NOTSET'],
          ['strings', ['a', 'b']],
          ['tensor', t],
          ['graph', g],
          ['tensors', [t, t]],
          ['graphs', [g]],
        ] as const
      ).map(([name, v]) => [name, attribute(name, v).type]),
    );
    expect(types).toEqual({
      int: A.INT,
      float: A.FLOAT,
      forcedFloat: A.FLOAT,
      forcedInt: A.INT,
      ints: A.INTS,
      floats: A.FLOATS,
      forcedFloats: A.FLOATS,
      string: A.STRING,
      strings: A.STRINGS,
      tensor: A.TENSOR,
      graph: A.GRAPH,
      tensors: A.TENSORS,
      graphs: A.GRAPHS,
    });
    expect(attribute('alpha', { f: 2 }).f).toBe(2);
  });

  it('builds ops that onnxruntime runs with those attributes', async () => {
    const bytes = encodeModel(
      model({
        graph: graph({
          nodes: [
            node('LeakyRelu', ['x'], ['a'], { alpha: { f: 2 } }, 'leaky'),
            node('ArgMax', ['a'], ['label'], { axis: 1, keepdims: 0 }, { name: 'argmax' }),
          ],
          inputs: [valueInfo('x', T.FLOAT, ['batch', 3])],
          outputs: [valueInfo('a', T.FLOAT, ['batch', 3]), valueInfo('label', T.INT64, ['batch'])],
        }),
        opset: 17,
      }),
    );
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({
      x: new ort.Tensor('float32', Float32Array.of(-1, 0.5, -3, 2, -4, 1), [2, 3]),
    });
    await session.release();
    expect(Array.from(out.a!.data as Float32Array)).toEqual([-2, 0.5, -6, 2, -8, 1]);
    expect(Array.from(out.label!.data as BigInt64Array)).toEqual([1n, 0n]);
  });
});

describe('encodeModel / parseModel', () => {
  it('round-trips a model without loss', () => {
    const m = model({
      graph: graph({
        name: 'g',
        nodes: [node('Add', ['x', 'w'], ['y'], {}, { name: 'add' })],
        inputs: [valueInfo('x', T.FLOAT, ['batch', null, 2])],
        outputs: [valueInfo('y', T.FLOAT)],
        initializers: [tensor('w', T.FLOAT, [2], [1, 2])],
      }),
      opset: [
        { domain: '', version: 13 },
        { domain: 'ai.onnx.ml', version: 3 },
      ],
      producer: { name: 'me', version: '1.0' },
    });
    const back = parseModel(encodeModel(m));
    expect(equals(ModelProtoSchema, back, m)).toBe(true);
    expect(back.irVersion).toBe(7n);
    expect(back.producerName).toBe('me');
  });

  it('throws InvalidModelError on bytes that are not protobuf', () => {
    expect(() => parseModel(Uint8Array.of(0xff, 0xff, 0xff))).toThrow(InvalidModelError);
  });
});

describe('tensorToFloat32()', () => {
  it('reads raw_data sitting at an odd byte offset', () => {
    const raw = tensor('w', T.FLOAT, [3], [1.5, -2, 1e-3]).rawData;
    const buffer = new Uint8Array(raw.length + 1);
    buffer.set(raw, 1);
    const t = create(TensorProtoSchema, {
      dataType: T.FLOAT,
      dims: [3n],
      rawData: buffer.subarray(1),
    });
    expect(t.rawData.byteOffset % 4).toBe(1);
    expect(Array.from(tensorToFloat32(t))).toEqual(Array.from(Float32Array.of(1.5, -2, 1e-3)));
  });

  it('reads raw_data that is a view into a shared Node Buffer (as parsed from readFileSync)', () => {
    const raw = tensor('w', T.FLOAT, [3], [0.5, 4, -8]).rawData;
    const pool = Buffer.alloc(64);
    pool.set(raw, 7);
    const t = create(TensorProtoSchema, {
      dataType: T.FLOAT,
      dims: [3n],
      rawData: pool.subarray(7, 19),
    });
    expect(Array.from(tensorToFloat32(t))).toEqual([0.5, 4, -8]);
  });

  it('reads float_data, double_data, float16 and bfloat16', () => {
    const floatData = create(TensorProtoSchema, {
      dataType: T.FLOAT,
      dims: [2n],
      floatData: [1, 2.5],
    });
    const doubles = create(TensorProtoSchema, {
      dataType: T.DOUBLE,
      dims: [2n],
      doubleData: [0.25, -4],
    });
    const half = tensor('h', T.FLOAT16, [4], Uint16Array.of(0x3c00, 0xc000, 0x0001, 0x7c00));
    const halfInt32 = create(TensorProtoSchema, {
      dataType: T.FLOAT16,
      dims: [1n],
      int32Data: [0x3800],
    });
    const bf16 = create(TensorProtoSchema, {
      dataType: T.BFLOAT16,
      dims: [2n],
      int32Data: [0x3f80, 0xc040],
    });
    expect(Array.from(tensorToFloat32(floatData))).toEqual([1, 2.5]);
    expect(Array.from(tensorToFloat32(doubles))).toEqual([0.25, -4]);
    expect(Array.from(tensorToFloat32(half))).toEqual([1, -2, Math.fround(2 ** -24), Infinity]);
    expect(Array.from(tensorToFloat32(halfInt32))).toEqual([0.5]);
    expect(Array.from(tensorToFloat32(bf16))).toEqual([1, -3]);
  });

  it('refuses integer tensors', () => {
    expect(() => tensorToFloat32(tensor('i', T.INT8, [1], [1]))).toThrow(
      /INT8, not a floating-point/,
    );
  });
});

describe('datatype table and PRNG', () => {
  it('maps every V2 datatype to an ONNX element type and back', () => {
    for (const d of DATATYPES) expect(elemTypeToDatatype(datatypeToElemType(d))).toBe(d);
    expect(elemTypeToDatatype(T.BFLOAT16)).toBeUndefined();
    expect(elemTypeToDatatype(T.COMPLEX64)).toBeUndefined();
  });

  it('is deterministic per seed and roughly standard normal', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    expect(Array.from({ length: 5 }, a)).toEqual(Array.from({ length: 5 }, b));
    const normal = gaussian(mulberry32(7));
    const xs = Array.from({ length: 20_000 }, normal);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });
});
