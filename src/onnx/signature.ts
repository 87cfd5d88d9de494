import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from 'onnx-buf';
import { TensorProto_DataType } from 'onnx-buf';
import { parseModel } from './builder.ts';
import { elemTypeName, elemTypeToDatatype } from './datatypes.ts';
import { ModelRejectedError } from './errors.ts';
import type { ModelSignature, TensorSpec } from './types.ts';
import { walkGraphs } from './walk.ts';

const isDefaultDomain = (domain: string): boolean => domain === '' || domain === 'ai.onnx';

/** `domain::OpType`, the domain left out for ai.onnx. */
export const opKey = (n: NodeProto): string =>
  isDefaultDomain(n.domain) ? n.opType : `${n.domain}::${n.opType}`;

/** Elements a tensor declares (product of dims; 1 for a scalar). */
export const tensorElementCount = (t: TensorProto): number =>
  t.dims.reduce((acc, d) => acc * Number(d), 1);

/** Parameters a Constant node carries: its tensor, or the length of its list form. */
const constantElements = (n: NodeProto): number => {
  let count = 0;
  for (const a of n.attribute) {
    if (a.t) count += tensorElementCount(a.t);
    else if (a.sparseTensor?.values) count += tensorElementCount(a.sparseTensor.values);
    else if (a.name === 'value_floats') count += a.floats.length;
    else if (a.name === 'value_ints') count += a.ints.length;
    else if (a.name === 'value_strings') count += a.strings.length;
    else if (a.name === 'value_float' || a.name === 'value_int' || a.name === 'value_string') {
      count += 1;
    }
  }
  return count;
};

/**
 * A V2 tensor spec of a graph input or output. Throws `ModelRejectedError` for values the
 * runtime's JS API cannot pass: `UnsupportedIoType` for sequences, maps, optionals and sparse
 * tensors, `UnsupportedElementType` for element types such as bfloat16, float8, int4, complex.
 */
export const tensorSpec = (vi: ValueInfoProto, role: 'input' | 'output'): TensorSpec => {
  const type = vi.type?.value;
  if (type?.case !== 'tensorType') {
    const kind = type?.case?.replace(/Type$/, '') ?? 'untyped';
    throw new ModelRejectedError(
      'UnsupportedIoType',
      `Model ${role} '${vi.name}' is a ${kind} value; the serving runtime exchanges dense tensors only. ` +
        `Export the model with tensor ${role}s (e.g. unpack sequences or maps inside the graph).`,
      { details: { name: vi.name, role, kind } },
    );
  }
  const datatype = elemTypeToDatatype(type.value.elemType);
  if (datatype === undefined) {
    const typeName = elemTypeName(type.value.elemType);
    throw new ModelRejectedError(
      'UnsupportedElementType',
      `Model ${role} '${vi.name}' has element type ${typeName}, which the serving runtime cannot ` +
        `exchange; use FLOAT, FLOAT16, DOUBLE, an integer type, BOOL or STRING at the model boundary ` +
        `(cast inside the graph).`,
      { details: { name: vi.name, role, elemType: typeName } },
    );
  }
  const dims = type.value.shape?.dim ?? [];
  const shape = dims.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : -1));
  const names = dims.map((d) =>
    d.value.case === 'dimParam' && d.value.value ? d.value.value : null,
  );
  return names.some((n) => n !== null)
    ? { name: vi.name, datatype, shape, dimNames: names }
    : { name: vi.name, datatype, shape };
};

const countParameters = (g: GraphProto): number => {
  let count = 0;
  walkGraphs(g, (sub) => {
    for (const t of sub.initializer) count += tensorElementCount(t);
    for (const s of sub.sparseInitializer) count += s.values ? tensorElementCount(s.values) : 0;
    for (const n of sub.node) {
      if (n.opType === 'Constant' && isDefaultDomain(n.domain)) count += constantElements(n);
    }
  });
  return count;
};

/**
 * What a model takes and returns, and what it is made of. Graph inputs that are also
 * initializers are left out: they are overridable weights (IR < 4 lists them as inputs), not
 * values a caller must send — onnxruntime reports the same.
 */
export const readSignature = (source: Uint8Array | ModelProto): ModelSignature => {
  const m = source instanceof Uint8Array ? parseModel(source) : source;
  const g = m.graph;
  if (!g) {
    throw new ModelRejectedError(
      'NoGraph',
      'The model has no graph, so there is nothing to run; send an .onnx file exported with its graph.',
    );
  }
  const weights = new Set(g.initializer.map((t) => t.name));
  for (const s of g.sparseInitializer) if (s.values) weights.add(s.values.name);
  const opHistogram: Record<string, number> = {};
  let nodeCount = 0;
  walkGraphs(g, (sub) => {
    for (const n of sub.node) {
      const key = opKey(n);
      opHistogram[key] = (opHistogram[key] ?? 0) + 1;
      nodeCount++;
    }
  });
  return {
    inputs: g.input.filter((vi) => !weights.has(vi.name)).map((vi) => tensorSpec(vi, 'input')),
    outputs: g.output.map((vi) => tensorSpec(vi, 'output')),
    opsetImports: m.opsetImport.map((o) => ({ domain: o.domain, version: Number(o.version) })),
    irVersion: Number(m.irVersion),
    producer: { name: m.producerName, version: m.producerVersion },
    opHistogram,
    nodeCount,
    parameterCount: countParameters(g),
  };
};

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE half bits → number. */
const halfToFloat = (h: number): number => {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
};

// `Uint8Array.prototype.slice` copies, but a Node Buffer's `slice` is a view of the shared pool:
// `new Uint8Array(bytes)` always copies into a fresh, aligned buffer of exactly the right size.
const copyBytes = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);

const uint16Values = (t: TensorProto): ArrayLike<number> => {
  if (t.rawData.length > 0) {
    if (littleEndian) return new Uint16Array(copyBytes(t.rawData).buffer);
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    return Array.from({ length: t.rawData.byteLength >> 1 }, (_, i) => view.getUint16(i * 2, true));
  }
  // float16 and bfloat16 without raw_data keep their bit patterns in int32_data
  return t.int32Data;
};

/**
 * The values of a FLOAT, FLOAT16, BFLOAT16 or DOUBLE tensor as a fresh Float32Array, whether
 * they sit in raw_data (copied first: protobuf may hand it out at an odd byte offset) or in the
 * typed repeated fields.
 */
export const tensorToFloat32 = (t: TensorProto): Float32Array => {
  const D = TensorProto_DataType;
  const raw = t.rawData;
  switch (t.dataType) {
    case D.FLOAT: {
      if (raw.length === 0) return Float32Array.from(t.floatData);
      if (littleEndian) return new Float32Array(copyBytes(raw).buffer);
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      return Float32Array.from({ length: raw.byteLength >> 2 }, (_, i) =>
        view.getFloat32(i * 4, true),
      );
    }
    case D.DOUBLE: {
      if (raw.length === 0) return Float32Array.from(t.doubleData);
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      return Float32Array.from({ length: raw.byteLength >> 3 }, (_, i) =>
        view.getFloat64(i * 8, true),
      );
    }
    case D.FLOAT16:
      return Float32Array.from(uint16Values(t), halfToFloat);
    case D.BFLOAT16: {
      const bits = new Uint32Array(Array.from(uint16Values(t), (b) => (b & 0xffff) << 16));
      return new Float32Array(bits.buffer);
    }
    default:
      throw new TypeError(
        `tensor '${t.name}' is ${elemTypeName(t.dataType)}, not a floating-point tensor`,
      );
  }
};
