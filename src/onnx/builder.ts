import { create, fromBinary, isMessage, toBinary } from '@bufbuild/protobuf';
import {
  type AttributeProto,
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  type FunctionProto,
  type GraphProto,
  GraphProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  type SparseTensorProto,
  type TensorProto,
  TensorProto_DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from 'onnx-buf';
import { InvalidModelError } from './errors.ts';
import type { OpsetImport } from './types.ts';

/**
 * Values for `tensor()`. Numbers go to every numeric type (integers are range-checked by the
 * typed array they land in); 64-bit integer types also take bigints; FLOAT16 takes the raw IEEE
 * half bits (a `Uint16Array`), since JS has no half-precision number.
 */
export type TensorValues = ArrayLike<number | bigint> | ArrayLike<boolean> | ArrayLike<string>;

const utf8 = new TextEncoder();

const toBigInt = (v: unknown): bigint => {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  throw new TypeError(`expected an integer or a bigint, got ${String(v)}`);
};

const toNumber = (v: unknown): number => {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  throw new TypeError(`expected a number, got ${String(v)}`);
};

/** Bytes of `values` in ONNX's raw_data layout (little-endian, bool as one byte). */
const rawBytes = (dataType: number, values: TensorValues): Uint8Array<ArrayBuffer> => {
  const n = values.length;
  const D = TensorProto_DataType;
  const sizes: Partial<Record<number, number>> = {
    [D.FLOAT]: 4,
    [D.DOUBLE]: 8,
    [D.FLOAT16]: 2,
    [D.INT8]: 1,
    [D.UINT8]: 1,
    [D.BOOL]: 1,
    [D.INT16]: 2,
    [D.UINT16]: 2,
    [D.INT32]: 4,
    [D.UINT32]: 4,
    [D.INT64]: 8,
    [D.UINT64]: 8,
  };
  const size = sizes[dataType];
  if (size === undefined) {
    throw new TypeError(`tensor(): data type ${dataType} is not supported by the builder`);
  }
  const out = new Uint8Array(n * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const v: unknown = values[i];
    const at = i * size;
    switch (dataType) {
      case D.FLOAT:
        view.setFloat32(at, toNumber(v), true);
        break;
      case D.DOUBLE:
        view.setFloat64(at, toNumber(v), true);
        break;
      case D.FLOAT16:
      case D.UINT16:
        view.setUint16(at, toNumber(v), true);
        break;
      case D.INT16:
        view.setInt16(at, toNumber(v), true);
        break;
      case D.INT8:
        view.setInt8(at, toNumber(v));
        break;
      case D.UINT8:
        view.setUint8(at, toNumber(v));
        break;
      case D.BOOL:
        view.setUint8(at, toNumber(v) ? 1 : 0);
        break;
      case D.INT32:
        view.setInt32(at, toNumber(v), true);
        break;
      case D.UINT32:
        view.setUint32(at, toNumber(v), true);
        break;
      case D.INT64:
        view.setBigInt64(at, toBigInt(v), true);
        break;
      case D.UINT64:
        view.setBigUint64(at, toBigInt(v), true);
        break;
    }
  }
  return out;
};

/** A tensor (initializer or attribute value) with its data in `rawData`, strings in `stringData`. */
export const tensor = (
  name: string,
  dataType: TensorProto_DataType | number,
  dims: readonly number[],
  values: TensorValues,
): TensorProto => {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (values.length !== expected) {
    throw new RangeError(
      `tensor(${name}): ${values.length} values for dims [${dims.join(', ')}] (${expected} expected)`,
    );
  }
  const base = { name, dataType, dims: dims.map((d) => BigInt(d)) };
  if (dataType === TensorProto_DataType.STRING) {
    const stringData = Array.from(values as ArrayLike<unknown>, (v) => utf8.encode(String(v)));
    return create(TensorProtoSchema, { ...base, stringData });
  }
  return create(TensorProtoSchema, { ...base, rawData: rawBytes(dataType, values) });
};

/** An explicit float or int attribute, for values whose JS type is ambiguous (`{ f: 1 }`). */
export type AttrWrapped =
  | { f: number }
  | { i: number | bigint }
  | { floats: readonly number[] }
  | { ints: readonly (number | bigint)[] };

export type AttrValue =
  | number
  | bigint
  | string
  | Uint8Array
  | AttrWrapped
  | readonly number[]
  | readonly bigint[]
  | readonly string[]
  | TensorProto
  | GraphProto
  | readonly TensorProto[]
  | readonly GraphProto[];

const T = AttributeProto_AttributeType;

const isTensorList = (v: readonly unknown[]): v is readonly TensorProto[] =>
  v.length > 0 && v.every((x) => isMessage(x, TensorProtoSchema));
const isGraphList = (v: readonly unknown[]): v is readonly GraphProto[] =>
  v.length > 0 && v.every((x) => isMessage(x, GraphProtoSchema));

/**
 * One attribute from a plain JS value. Integral numbers become INT, others FLOAT: use `{ f: 1 }`
 * where an op wants a float that happens to be whole (LayerNormalization's epsilon is not, but
 * `alpha: 1` would be read as an int).
 */
export const attribute = (name: string, value: AttrValue): AttributeProto => {
  const make = (fields: Partial<Omit<AttributeProto, '$typeName'>>): AttributeProto =>
    create(AttributeProtoSchema, { name, ...fields });
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? make({ type: T.INT, i: BigInt(value) })
      : make({ type: T.FLOAT, f: value });
  }
  if (typeof value === 'bigint') return make({ type: T.INT, i: value });
  if (typeof value === 'string') return make({ type: T.STRING, s: utf8.encode(value) });
  if (value instanceof Uint8Array) return make({ type: T.STRING, s: new Uint8Array(value) });
  if (isMessage(value, TensorProtoSchema)) return make({ type: T.TENSOR, t: value });
  if (isMessage(value, GraphProtoSchema)) return make({ type: T.GRAPH, g: value });
  if (Array.isArray(value)) {
    const list = value as readonly unknown[];
    if (isTensorList(list)) return make({ type: T.TENSORS, tensors: [...list] });
    if (isGraphList(list)) return make({ type: T.GRAPHS, graphs: [...list] });
    // an empty list falls through to INTS, the usual meaning of `[]` (axes, pads, perm)
    if (list.length > 0 && list.every((x) => typeof x === 'string')) {
      return make({ type: T.STRINGS, strings: list.map((s) => utf8.encode(s)) });
    }
    if (
      list.every((x) => typeof x === 'bigint' || (typeof x === 'number' && Number.isInteger(x)))
    ) {
      return make({ type: T.INTS, ints: list.map(toBigInt) });
    }
    if (list.every((x) => typeof x === 'number')) {
      return make({ type: T.FLOATS, floats: [...list] });
    }
    throw new TypeError(`attribute ${name}: mixed list values cannot be encoded`);
  }
  const wrapped = value as AttrWrapped;
  if ('f' in wrapped) return make({ type: T.FLOAT, f: wrapped.f });
  if ('i' in wrapped) return make({ type: T.INT, i: toBigInt(wrapped.i) });
  if ('floats' in wrapped) return make({ type: T.FLOATS, floats: [...wrapped.floats] });
  return make({ type: T.INTS, ints: wrapped.ints.map(toBigInt) });
};

export interface NodeOptions {
  name?: string;
  domain?: string;
}

export const node = (
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: Readonly<Record<string, AttrValue>> = {},
  options: NodeOptions | string = {},
): NodeProto => {
  const { name = '', domain = '' } = typeof options === 'string' ? { name: options } : options;
  return create(NodeProtoSchema, {
    opType,
    input: [...inputs],
    output: [...outputs],
    name,
    domain,
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  });
};

/**
 * A tensor-typed graph input or output. Dims: a number is fixed, a string is a symbolic dim
 * (`'batch'`), `null` an unnamed dynamic dim; `undefined` dims leave the rank unknown.
 */
export const valueInfo = (
  name: string,
  elemType: TensorProto_DataType | number,
  dims?: readonly (number | string | null)[],
): ValueInfoProto => {
  const shape =
    dims === undefined
      ? undefined
      : create(TensorShapeProtoSchema, {
          dim: dims.map((d) =>
            create(TensorShapeProto_DimensionSchema, {
              value:
                typeof d === 'number'
                  ? { case: 'dimValue', value: BigInt(d) }
                  : typeof d === 'string'
                    ? { case: 'dimParam', value: d }
                    : { case: undefined },
            }),
          ),
        });
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, shape ? { elemType, shape } : { elemType }),
      },
    }),
  });
};

export interface GraphSpec {
  name?: string;
  nodes: readonly NodeProto[];
  inputs: readonly ValueInfoProto[];
  outputs: readonly ValueInfoProto[];
  initializers?: readonly TensorProto[];
  sparseInitializers?: readonly SparseTensorProto[];
  valueInfo?: readonly ValueInfoProto[];
}

export const graph = (spec: GraphSpec): GraphProto =>
  create(GraphProtoSchema, {
    name: spec.name ?? 'graph',
    node: [...spec.nodes],
    input: [...spec.inputs],
    output: [...spec.outputs],
    initializer: [...(spec.initializers ?? [])],
    sparseInitializer: [...(spec.sparseInitializers ?? [])],
    valueInfo: [...(spec.valueInfo ?? [])],
  });

export interface ModelSpec {
  graph: GraphProto;
  /** ai.onnx opset version, or the full list of imports */
  opset: number | readonly OpsetImport[];
  /** default: the lowest IR version that carries the ai.onnx opset (ONNX's versioning table) */
  irVersion?: number;
  producer?: { name: string; version?: string } | string;
  functions?: readonly FunctionProto[];
}

/** IR versions that introduced support for each ai.onnx opset, per onnx/helper.py's table. */
const irVersionFor = (opset: number): number => {
  if (opset <= 8) return 3;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
};

export const model = (spec: ModelSpec): ModelProto => {
  const imports: readonly OpsetImport[] =
    typeof spec.opset === 'number' ? [{ domain: '', version: spec.opset }] : spec.opset;
  const aiOnnx = imports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 17;
  const producer: { name?: string; version?: string } =
    typeof spec.producer === 'string' ? { name: spec.producer } : (spec.producer ?? {});
  return create(ModelProtoSchema, {
    irVersion: BigInt(spec.irVersion ?? irVersionFor(aiOnnx)),
    opsetImport: imports.map((o) =>
      create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(o.version) }),
    ),
    producerName: producer.name ?? 'onnx-maas',
    producerVersion: producer.version ?? '',
    graph: spec.graph,
    functions: [...(spec.functions ?? [])],
  });
};

export const encodeModel = (m: ModelProto): Uint8Array<ArrayBuffer> =>
  toBinary(ModelProtoSchema, m);

/** Decodes ONNX protobuf bytes; throws `InvalidModelError` on anything protobuf cannot read. */
export const parseModel = (bytes: Uint8Array): ModelProto => {
  try {
    return fromBinary(ModelProtoSchema, bytes);
  } catch (cause) {
    throw new InvalidModelError(
      `The bytes are not a readable ONNX model (${cause instanceof Error ? cause.message : String(cause)}); send a complete .onnx file as exported by your framework.`,
      { cause },
    );
  }
};
