import type * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import type { HttpRequest, HttpResponse, TensorData } from '../../src/protocol/index.ts';

/**
 * A small Open Inference Protocol V2 client for the tests, written apart from the server's codec
 * so the two check each other: it builds requests (JSON and binary) and reads responses.
 */
export interface ClientTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: TensorData;
}

let nextId = 0;

export const httpRequest = (
  method: string,
  path: string,
  init: { body?: string | Uint8Array; headers?: Record<string, string> } = {},
): HttpRequest => ({
  method,
  path,
  headers: Object.fromEntries(
    Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
  ),
  query: {},
  body: typeof init.body === 'string' ? new TextEncoder().encode(init.body) : init.body,
  requestId: `test-${++nextId}`,
});

export const postJson = (path: string, body: string | object): HttpRequest =>
  httpRequest('POST', path, {
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });

const ORT_TO_V2: Readonly<Record<string, string>> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  float16: 'FP16',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

export const fromOrt = (name: string, t: ort.Tensor): ClientTensor => ({
  name,
  datatype: ORT_TO_V2[t.type] ?? t.type,
  shape: [...t.dims],
  data: t.data as TensorData,
});

/** One element as the JSON a careful client writes: exact for every value the type can hold. */
const jsonElement = (datatype: string, v: unknown): string => {
  if (datatype === 'BOOL') return v ? 'true' : 'false';
  if (typeof v === 'bigint') {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? v.toString()
      : `"${v}"`;
  }
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return '"NaN"';
    if (!Number.isFinite(v)) return v > 0 ? '"Infinity"' : '"-Infinity"';
    return Object.is(v, -0) ? '-0' : String(v);
  }
  return JSON.stringify(v);
};

const nestedJson = (t: ClientTensor): string => {
  const elements = Array.from(t.data as ArrayLike<unknown>, (v) => jsonElement(t.datatype, v));
  let at = 0;
  const nest = (depth: number): string => {
    if (depth === t.shape.length) return elements[at++] ?? 'null';
    const parts: string[] = [];
    for (let i = 0; i < (t.shape[depth] ?? 0); i++) parts.push(nest(depth + 1));
    return `[${parts.join(',')}]`;
  };
  return nest(0);
};

const jsonInputText = (t: ClientTensor, nested: boolean): string => {
  const data = nested
    ? nestedJson(t)
    : `[${Array.from(t.data as ArrayLike<unknown>, (v) => jsonElement(t.datatype, v)).join(',')}]`;
  return `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":${JSON.stringify(t.shape)},"data":${data}}`;
};

const requestText = (inputs: string[], extra: Record<string, unknown>): string => {
  const fields = Object.entries(extra)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`);
  return `{"inputs":[${inputs.join(',')}]${fields.join('')}}`;
};

/** A V2 JSON request body; `nested` writes `data` nested to the shape instead of flat. */
export const jsonInferBody = (
  inputs: readonly ClientTensor[],
  options: { nested?: boolean; outputs?: object[]; id?: string; parameters?: object } = {},
): string =>
  requestText(
    inputs.map((t) => jsonInputText(t, options.nested ?? false)),
    { outputs: options.outputs, id: options.id, parameters: options.parameters },
  );

export const binaryOf = (t: ClientTensor): Uint8Array => {
  if (!Array.isArray(t.data)) {
    const d = t.data;
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  }
  const chunks = t.data.map((s) => new TextEncoder().encode(s));
  const out = new Uint8Array(chunks.reduce((n, c) => n + 4 + c.byteLength, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const c of chunks) {
    view.setUint32(at, c.byteLength, true);
    out.set(c, at + 4);
    at += 4 + c.byteLength;
  }
  return out;
};

/**
 * A request with the binary tensor data extension: inputs binary, except those `asJson` picks,
 * which travel as JSON `data` in the header (the extension allows mixing).
 */
export const binaryInferRequest = (
  path: string,
  inputs: readonly ClientTensor[],
  options: {
    outputs?: object[];
    parameters?: object;
    asJson?: (t: ClientTensor) => boolean;
    nested?: boolean;
  } = {},
): HttpRequest => {
  const json = inputs.filter((t) => options.asJson?.(t) ?? false);
  const binary = inputs.filter((t) => !json.includes(t));
  const binaries = binary.map(binaryOf);
  const header = new TextEncoder().encode(
    requestText(
      [
        ...json.map((t) => jsonInputText(t, options.nested ?? false)),
        ...binary.map((t, i) =>
          JSON.stringify({
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
            parameters: { binary_data_size: binaries[i]?.byteLength },
          }),
        ),
      ],
      { outputs: options.outputs, parameters: options.parameters },
    ),
  );
  const body = new Uint8Array(binaries.reduce((n, b) => n + b.byteLength, header.byteLength));
  body.set(header);
  let at = header.byteLength;
  for (const b of binaries) {
    body.set(b, at);
    at += b.byteLength;
  }
  return httpRequest('POST', path, {
    body,
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.byteLength),
    },
  });
};

const TYPED: Readonly<Record<string, (b: ArrayBuffer, n: number) => TensorData>> = {
  BOOL: (b) => new Uint8Array(b),
  UINT8: (b) => new Uint8Array(b),
  INT8: (b) => new Int8Array(b),
  UINT16: (b) => new Uint16Array(b),
  INT16: (b) => new Int16Array(b),
  FP16: (b) => new Uint16Array(b),
  UINT32: (b) => new Uint32Array(b),
  INT32: (b) => new Int32Array(b),
  FP32: (b) => new Float32Array(b),
  UINT64: (b) => new BigUint64Array(b),
  INT64: (b) => new BigInt64Array(b),
  FP64: (b) => new Float64Array(b),
};

const fromBinaryBytes = (datatype: string, bytes: Uint8Array, count: number): TensorData => {
  if (datatype === 'BYTES') {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out: string[] = [];
    let at = 0;
    for (let i = 0; i < count; i++) {
      const n = view.getUint32(at, true);
      out.push(new TextDecoder().decode(bytes.subarray(at + 4, at + 4 + n)));
      at += 4 + n;
    }
    return out;
  }
  const make = TYPED[datatype];
  if (!make) throw new Error(`unknown datatype ${datatype}`);
  return make(bytes.slice().buffer, count);
};

const fromJsonData = (datatype: string, data: unknown[]): TensorData | number[] => {
  switch (datatype) {
    case 'BYTES':
      return data as string[];
    case 'BOOL':
      return Uint8Array.from(data, (v) => (v ? 1 : 0));
    case 'INT64':
      return BigInt64Array.from(data, (v) => BigInt(v as string | number));
    case 'UINT64':
      return BigUint64Array.from(data, (v) => BigInt(v as string | number));
    case 'FP16':
      return data.map(Number);
    default: {
      const make = TYPED[datatype];
      if (!make) throw new Error(`unknown datatype ${datatype}`);
      const out = make(new ArrayBuffer(data.length * elementSize(datatype)), data.length);
      (out as Float64Array).set(data.map(Number));
      return out;
    }
  }
};

const elementSize = (datatype: string): number =>
  ({ BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4 })[
    datatype
  ] ?? 8;

/** Quotes integer literals JSON.parse would round, so 64-bit values survive parsing. */
const parseExactJson = (text: string): unknown =>
  JSON.parse(text.replace(/(?<=[[,])(-?[0-9]{16,})(?=[,\]])/g, '"$1"'));

export interface ResponseOutput {
  name: string;
  datatype: string;
  shape: number[];
  /** typed like the server's tensors; FP16 sent as JSON comes back as numbers */
  data: TensorData | number[];
  binary: boolean;
}

export interface DecodedResponse {
  header: Record<string, unknown>;
  outputs: ResponseOutput[];
}

export const bodyText = (res: HttpResponse): string =>
  typeof res.body === 'string' ? res.body : new TextDecoder().decode(res.body);

/** Reads a V2 infer response, JSON or binary. */
export const readInferResponse = (res: HttpResponse): DecodedResponse => {
  const raw = typeof res.body === 'string' ? new TextEncoder().encode(res.body) : res.body;
  const headerLength = Number(res.headers['inference-header-content-length'] ?? raw.byteLength);
  const header = parseExactJson(new TextDecoder().decode(raw.subarray(0, headerLength))) as {
    outputs: {
      name: string;
      datatype: string;
      shape: number[];
      data?: unknown[];
      parameters?: { binary_data_size?: number };
    }[];
  };
  let at = headerLength;
  const outputs = header.outputs.map((o): ResponseOutput => {
    const count = o.shape.reduce((a, b) => a * b, 1);
    const size = o.parameters?.binary_data_size;
    if (size === undefined) {
      return { ...o, data: fromJsonData(o.datatype, o.data ?? []), binary: false };
    }
    const data = fromBinaryBytes(o.datatype, raw.subarray(at, at + size), count);
    at += size;
    return { name: o.name, datatype: o.datatype, shape: o.shape, data, binary: true };
  });
  expect(at).toBe(raw.byteLength);
  return { header: header as unknown as Record<string, unknown>, outputs };
};

/** Bytes of a numeric tensor, to compare floats bit for bit (NaN payloads and -0 included). */
export const bytesOf = (data: TensorData | number[]): Uint8Array | unknown[] =>
  Array.isArray(data) ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
