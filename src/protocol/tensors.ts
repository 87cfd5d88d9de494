import type { Datatype, NumericData, TensorData, TensorSpec, TensorValue } from '../onnx/index.ts';
import { InvalidTensorError, PayloadTooLargeError } from './errors.ts';

export type { NumericData, TensorData };

/** a tensor as the codec decodes it from a request or encodes it into a response */
export type DecodedTensor = TensorValue;

export type FixedDatatype = Exclude<Datatype, 'BYTES'>;

interface TypedArrayConstructor {
  new (length: number): NumericData;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): NumericData;
  readonly BYTES_PER_ELEMENT: number;
}

const ARRAYS: Readonly<Record<FixedDatatype, TypedArrayConstructor>> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

/** Bytes per element in the binary tensor data extension (BYTES is length-prefixed instead). */
export const elementBytes = (datatype: FixedDatatype): number => ARRAYS[datatype].BYTES_PER_ELEMENT;

export const describeShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

const label = (spec: TensorSpec): string =>
  `${spec.datatype} ${describeShape(spec.shape)}${spec.shape.includes(-1) ? ' (-1 = any size)' : ''}`;

/**
 * Checks a request shape against the signature and returns its element count. The count is
 * bounded by `maxElements` as it is multiplied, so absurd dims fail here, before any allocation.
 */
export const checkShape = (spec: TensorSpec, shape: unknown, maxElements: number): number => {
  const expected = `the model expects ${label(spec)}`;
  if (
    !Array.isArray(shape) ||
    !shape.every((d): d is number => Number.isSafeInteger(d) && (d as number) >= 0)
  ) {
    throw new InvalidTensorError(
      'input',
      spec.name,
      `shape must be an array of non-negative integers, got ${preview(shape)}; ${expected}`,
    );
  }
  if (shape.length !== spec.shape.length) {
    throw new InvalidTensorError(
      'input',
      spec.name,
      `shape ${describeShape(shape)} has rank ${shape.length}; ${expected}`,
    );
  }
  spec.shape.forEach((dim, i) => {
    if (dim >= 0 && shape[i] !== dim) {
      throw new InvalidTensorError(
        'input',
        spec.name,
        `shape ${describeShape(shape)} has ${shape[i]} at dim ${i} where the model needs ${dim}; ${expected}`,
      );
    }
  });
  if (shape.includes(0)) return 0;
  let count = 1;
  for (const dim of shape) {
    count *= dim;
    if (count > maxElements) {
      throw new PayloadTooLargeError(
        `input ${JSON.stringify(spec.name)}: shape ${describeShape(shape)} is over the cap of ` +
          `${maxElements} elements per request; send smaller batches`,
      );
    }
  }
  return count;
};

/** A short description of a client's value for an error message; never walks into it. */
export const preview = (value: unknown): string => {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === undefined) return 'nothing';
  if (typeof value === 'object') return value === null ? 'null' : 'an object';
  if (typeof value === 'string') {
    const text = JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
    return text;
  }
  return String(value);
};

/**
 * `data` as a flat array of `count` leaves: already flat (row-major), nested exactly to `shape`,
 * or a bare scalar for a one-element tensor.
 */
export const flattenData = (
  name: string,
  data: unknown,
  shape: readonly number[],
  count: number,
): readonly unknown[] => {
  if (!Array.isArray(data)) {
    if (count === 1 && data !== undefined) return [data];
    throw new InvalidTensorError(
      'input',
      name,
      `data must be an array of ${count} elements, flat or nested as ${describeShape(shape)}; got ${preview(data)}`,
    );
  }
  if (data.length === count && (count === 0 || !Array.isArray(data[0]))) return data;
  const flat: unknown[] = new Array(count);
  let at = 0;
  const walk = (node: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (Array.isArray(node)) {
        throw new InvalidTensorError(
          'input',
          name,
          `data${path} is nested deeper than shape ${describeShape(shape)}`,
        );
      }
      flat[at++] = node;
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new InvalidTensorError(
        'input',
        name,
        `data${path} must be an array of ${shape[depth]} to match shape ${describeShape(shape)}, ` +
          `got ${preview(node)} (or send data flat: ${count} elements in row-major order)`,
      );
    }
    for (let i = 0; i < node.length; i++) walk(node[i], depth + 1, `${path}[${i}]`);
  };
  walk(data, 0, '');
  return flat;
};

const NON_FINITE: Readonly<Record<string, number>> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};

const INTEGER_RANGES: Readonly<Partial<Record<Datatype, readonly [number, number]>>> = {
  UINT8: [0, 0xff],
  UINT16: [0, 0xffff],
  UINT32: [0, 0xffffffff],
  INT8: [-0x80, 0x7f],
  INT16: [-0x8000, 0x7fff],
  INT32: [-0x80000000, 0x7fffffff],
};

const BIGINT_RANGES: Readonly<Partial<Record<Datatype, readonly [bigint, bigint]>>> = {
  UINT64: [0n, 2n ** 64n - 1n],
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
};

const badElement = (name: string, index: number, value: unknown, expected: string) =>
  new InvalidTensorError('input', name, `element ${index} is ${preview(value)}; ${expected}`);

/** Converts JSON leaves to the datatype's storage, rejecting anything that would not be exact. */
export const fromJsonValues = (
  name: string,
  datatype: Datatype,
  values: readonly unknown[],
): TensorData => {
  const n = values.length;
  switch (datatype) {
    case 'BYTES': {
      for (let i = 0; i < n; i++) {
        if (typeof values[i] !== 'string') {
          throw badElement(name, i, values[i], 'BYTES data must be strings');
        }
      }
      return values.slice() as string[];
    }
    case 'BOOL': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'boolean') throw badElement(name, i, v, 'BOOL data must be true or false');
        out[i] = v ? 1 : 0;
      }
      return out;
    }
    case 'FP16':
      throw new InvalidTensorError(
        'input',
        name,
        'FP16 has no JSON form; send it as binary: raw little-endian half floats after the JSON, ' +
          'with parameters.binary_data_size on the input and the Inference-Header-Content-Length header',
      );
    case 'FP32':
    case 'FP64': {
      const out = datatype === 'FP32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        // a finite double past FP32's range would silently become ±Infinity (and NaN outputs)
        if (typeof v === 'number' && datatype === 'FP32' && !Number.isFinite(Math.fround(v))) {
          throw badElement(
            name,
            i,
            v,
            'FP32 data must lie within ±3.4028235e38; send "Infinity" or "-Infinity" for an ' +
              'infinite value, or use FP64',
          );
        }
        if (typeof v === 'number') out[i] = v;
        else if (typeof v === 'string' && Object.hasOwn(NON_FINITE, v)) out[i] = NON_FINITE[v] ?? 0;
        else {
          throw badElement(
            name,
            i,
            v,
            `${datatype} data must be numbers (or the strings "NaN", "Infinity", "-Infinity")`,
          );
        }
      }
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const [min, max] = BIGINT_RANGES[datatype] ?? [0n, 0n];
      const out = datatype === 'INT64' ? new BigInt64Array(n) : new BigUint64Array(n);
      const expected =
        `${datatype} data must be integers in [${min}, ${max}]; ` +
        `past 2^53 send them as strings ("9007199254740993") or as binary`;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        let big: bigint;
        if (typeof v === 'number' && Number.isSafeInteger(v)) big = BigInt(v);
        else if (typeof v === 'string' && /^-?[0-9]{1,20}$/.test(v)) big = BigInt(v);
        else throw badElement(name, i, v, expected);
        if (big < min || big > max) throw badElement(name, i, v, expected);
        out[i] = big;
      }
      return out;
    }
    default: {
      const [min, max] = INTEGER_RANGES[datatype] ?? [0, 0];
      const out = new ARRAYS[datatype](n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
          throw badElement(name, i, v, `${datatype} data must be integers in [${min}, ${max}]`);
        }
        out[i] = v;
      }
      return out;
    }
  }
};

const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextEncoder();

/**
 * Reads `count` elements from a binary slice of the request body. A view is taken when the slice
 * is aligned for the element type; otherwise the bytes are copied, since typed arrays need
 * aligned offsets.
 */
export const fromBinary = (
  name: string,
  datatype: Datatype,
  bytes: Uint8Array,
  count: number,
  shape: readonly number[],
): TensorData => {
  if (datatype === 'BYTES') return bytesFromBinary(name, bytes, count);
  const size = elementBytes(datatype);
  if (bytes.byteLength !== count * size) {
    throw new InvalidTensorError(
      'input',
      name,
      `binary_data_size is ${bytes.byteLength} but shape ${describeShape(shape)} of ${datatype} ` +
        `needs ${count * size} bytes (${count} × ${size})`,
    );
  }
  const aligned = bytes.byteOffset % size === 0 && bytes.buffer instanceof ArrayBuffer;
  const source = aligned ? bytes : new Uint8Array(bytes);
  const data = new ARRAYS[datatype](source.buffer as ArrayBuffer, source.byteOffset, count);
  if (datatype === 'BOOL') {
    const index = (data as Uint8Array).findIndex((b) => b > 1);
    if (index >= 0) {
      throw new InvalidTensorError(
        'input',
        name,
        `BOOL element ${index} is byte ${data[index]}; binary BOOL is one byte per element, 0 or 1`,
      );
    }
  }
  return data;
};

const bytesFromBinary = (name: string, bytes: Uint8Array, count: number): string[] => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = new Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.byteLength) {
      throw new InvalidTensorError(
        'input',
        name,
        `binary BYTES data ends at element ${i} of ${count}; each element is a 4-byte ` +
          'little-endian length followed by that many bytes',
      );
    }
    const length = view.getUint32(at, true);
    at += 4;
    if (at + length > bytes.byteLength) {
      throw new InvalidTensorError(
        'input',
        name,
        `BYTES element ${i} declares ${length} bytes but only ${bytes.byteLength - at} remain in its binary_data_size`,
      );
    }
    try {
      out[i] = utf8Strict.decode(bytes.subarray(at, at + length));
    } catch (cause) {
      throw new InvalidTensorError(
        'input',
        name,
        `BYTES element ${i} is not valid UTF-8; onnxruntime string tensors hold text`,
        { cause },
      );
    }
    at += length;
  }
  if (at !== bytes.byteLength) {
    throw new InvalidTensorError(
      'input',
      name,
      `binary_data_size is ${bytes.byteLength} but its ${count} BYTES elements take ${at} bytes`,
    );
  }
  return out;
};

/** A tensor's elements in the binary tensor data layout. */
export const toBinary = (tensor: DecodedTensor): Uint8Array => {
  const { data } = tensor;
  if (!Array.isArray(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const encoded = data.map((s) => utf8.encode(s));
  const out = new Uint8Array(encoded.reduce((sum, e) => sum + 4 + e.byteLength, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of encoded) {
    view.setUint32(at, e.byteLength, true);
    out.set(e, at + 4);
    at += 4 + e.byteLength;
  }
  return out;
};

/** IEEE 754 half bits to the number they denote (exact: every half is a double). */
export const halfToNumber = (bits: number): number => {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
};

const isFloat = (datatype: Datatype): boolean =>
  datatype === 'FP16' || datatype === 'FP32' || datatype === 'FP64';

/** NaN and ±Infinity elements of a floating-point tensor (0 for other types). */
export const countNonFinite = (tensor: DecodedTensor): number => {
  if (!isFloat(tensor.datatype)) return 0;
  const data = tensor.data as Uint16Array | Float32Array | Float64Array;
  let count = 0;
  if (tensor.datatype === 'FP16') {
    for (let i = 0; i < data.length; i++) if (((data[i] ?? 0) & 0x7c00) === 0x7c00) count++;
    return count;
  }
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) count++;
  return count;
};

/**
 * One element as JSON text. Non-finite floats become the strings "NaN", "Infinity", "-Infinity"
 * (JSON has no literal for them; numpy and `Number()` parse these back); -0 keeps its sign;
 * 64-bit integers are written digit for digit.
 */
export const elementJson = (tensor: DecodedTensor, i: number): string => {
  const v = tensor.data[i];
  switch (tensor.datatype) {
    case 'BOOL':
      return v ? 'true' : 'false';
    case 'BYTES':
      return JSON.stringify(v);
    case 'FP16':
      return numberJson(halfToNumber(v as number));
    case 'FP32':
    case 'FP64':
      return numberJson(v as number);
    default:
      return String(v);
  }
};

const numberJson = (v: number): string => {
  if (Number.isFinite(v)) return Object.is(v, -0) ? '-0' : String(v);
  return Number.isNaN(v) ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
};

/** A tensor's elements as a flat JSON array, with fast paths for the common cases. */
export const dataJson = (tensor: DecodedTensor): string => {
  const { data, datatype } = tensor;
  if (datatype === 'BYTES') return JSON.stringify(data);
  const plain =
    datatype === 'FP32' || datatype === 'FP64'
      ? (data as Float32Array | Float64Array).every((v) => Number.isFinite(v) && !Object.is(v, -0))
      : datatype !== 'BOOL' && datatype !== 'FP16';
  if (plain) return `[${(data as NumericData).join(',')}]`;
  const parts: string[] = new Array(data.length);
  for (let i = 0; i < data.length; i++) parts[i] = elementJson(tensor, i);
  return `[${parts.join(',')}]`;
};
