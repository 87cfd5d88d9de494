import type { APIGatewayEventRequestContextV2, APIGatewayProxyEventV2 } from 'aws-lambda';
import fc from 'fast-check';
import { DATATYPES, type Datatype, type TensorSpec } from '../../../src/onnx/index.ts';
import type { HttpRequest } from '../../../src/protocol/index.ts';
import { elementBytes } from '../../../src/protocol/tensors.ts';
import { explainRequest, explainV1Request } from './explain-arbitraries.ts';
import { FUZZ_MODELS, FUZZ_SIGNATURES, UNICODE_INPUT } from './models.ts';

/**
 * fast-check generators of what a client can send the predict API, from near-valid requests with
 * one lie in them to pure noise. Request bodies are written as text rather than through
 * `JSON.stringify`, so they can hold what a careless or hostile client writes: nesting deeper
 * than any serializer recurses, numbers past float range, lone surrogates, duplicate keys.
 */

/** A JSON fragment written as is. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** Shallow JSON writer: our own structures are a few levels deep; deep parts are `RawJson`. */
export const jsonText = (value: unknown): string => {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'object' && value !== null) {
    const fields = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`);
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
};

/** A test case: the family it came from (for the figures) and the request. */
export interface FuzzRequest {
  family: string;
  request: HttpRequest;
}

const utf8 = new TextEncoder();
const MiB = 1024 * 1024;

const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

let nextId = 0;
export const request = (
  method: string,
  path: string,
  headers: Record<string, string | undefined>,
  body: Uint8Array | undefined,
): HttpRequest => ({
  method,
  path,
  headers: Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)),
  query: {},
  body,
  requestId: `fuzz-${++nextId}`,
});

// ─── leaves ─────────────────────────────────────────────────────────────────────────────────────

const loneSurrogate = fc
  .integer({ min: 0xd800, max: 0xdfff })
  .map((code) => String.fromCharCode(code));

/** Text a codec can trip on: any code point, lone surrogates, control characters. */
export const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc
    .array(fc.oneof(loneSurrogate, fc.string({ unit: 'binary', maxLength: 3 })), { maxLength: 5 })
    .map((parts) => parts.join('')),
  fc.constantFrom('', '\u0000', '\uFEFF', 'e\u0301', '\u202Eevil', '%00', '../../..', '\r\n'),
);

/** Any JSON leaf, including the literals that parse to values a codec must still refuse. */
export const hostileLeaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  fc.boolean(),
  fc.constant(null),
  hostileText,
  fc.constantFrom(
    new RawJson('1e999'),
    new RawJson('-1e999'),
    new RawJson('-0'),
    new RawJson('1e-400'),
    new RawJson('18446744073709551616'),
    'NaN',
    'Infinity',
    '-Infinity',
    'nan',
    '0x10',
    ' 1',
  ),
  fc.constant({}),
  fc.constant([]),
);

/** Arrays nested `depth` deep around a leaf: deeper than any recursive walker survives. */
export const deepArray = (depth: number, leaf = '1'): RawJson =>
  new RawJson(`${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`);

const deepObject = (depth: number): RawJson =>
  new RawJson(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);

const deepValue = fc.oneof(
  fc.integer({ min: 2, max: 200_000 }).map((d) => deepArray(d)),
  fc.integer({ min: 2, max: 100_000 }).map(deepObject),
);

const INTEGER_RANGE: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 0xff],
  UINT16: [0, 0xffff],
  UINT32: [0, 0xffffffff],
  INT8: [-0x80, 0x7f],
  INT16: [-0x8000, 0x7fff],
  INT32: [-0x80000000, 0x7fffffff],
};

/** A JSON element the datatype accepts. */
const validElement = (datatype: Datatype): fc.Arbitrary<unknown> => {
  switch (datatype) {
    case 'BOOL':
      return fc.boolean();
    case 'BYTES':
      return hostileText;
    case 'FP16':
    case 'FP32':
    case 'FP64':
      return fc.oneof(
        { arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }), weight: 4 },
        { arbitrary: fc.constantFrom('NaN', 'Infinity', '-Infinity'), weight: 1 },
      );
    case 'INT64':
      // mostly indices the gather model's 3-row table holds (-3..2), sometimes anything
      return fc.oneof(
        { arbitrary: fc.integer({ min: -3, max: 2 }), weight: 6 },
        { arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String), weight: 1 },
      );
    case 'UINT64':
      return fc.oneof(fc.nat(), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String));
    default: {
      const [min, max] = INTEGER_RANGE[datatype] ?? [0, 0];
      return fc.integer({ min, max });
    }
  }
};

// ─── tensors ────────────────────────────────────────────────────────────────────────────────────

/** Shapes a client could send in place of the real one: huge, negative, fractional, not numbers. */
export const hostileShape: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    [2 ** 53],
    [2 ** 53 + 2, 4],
    [2 ** 31, 2 ** 31],
    [2 ** 32, 0],
    [0, 2 ** 53 - 1],
    [-1, 4],
    [-(2 ** 31), 4],
    [1.5, 4],
    [1e308, 1e308],
    new RawJson('[NaN]'),
    new RawJson('[1e999, 4]'),
    new RawJson('[-0, 4]'),
    new RawJson('[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]'),
    ['1', 4],
    [null, 4],
    [[1], 4],
    [true, 4],
    {},
    'shape',
    null,
    [],
  ),
  fc.array(fc.oneof(fc.integer({ min: -3, max: 6 }), fc.double(), hostileLeaf), { maxLength: 6 }),
  fc.integer({ min: 100, max: 5000 }).map((n) => new Array<number>(n).fill(1)),
  fc.integer({ min: 2, max: 100_000 }).map((d) => deepArray(d)),
);

const hostileName = (others: readonly string[]): fc.Arbitrary<unknown> =>
  fc.oneof(
    hostileText,
    fc.constantFrom<unknown>(
      'x'.repeat(100_000),
      UNICODE_INPUT.normalize('NFD'),
      UNICODE_INPUT.toUpperCase(),
      `${UNICODE_INPUT} `,
      '__proto__',
      'constructor',
      'hasOwnProperty',
      42,
      null,
      ['x'],
      { name: 'x' },
    ),
    ...(others.length > 0 ? [fc.constantFrom(...others)] : []),
  );

const hostileDatatype: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...DATATYPES),
  fc.constantFrom(...DATATYPES).map((d) => d.toLowerCase()),
  fc.constantFrom<unknown>(
    'FLOAT',
    'float32',
    'TYPE_FP32',
    'BF16',
    'STRING',
    1,
    null,
    ['FP32'],
    '',
  ),
  hostileText,
);

export const hostileData: fc.Arbitrary<unknown> = fc.oneof(
  deepValue,
  fc
    .integer({ min: 1_000, max: 300_000 })
    .map((n) => new RawJson(`[${new Array<string>(n).fill('1').join(',')}]`)),
  fc.array(hostileLeaf, { maxLength: 16 }),
  fc.array(fc.array(hostileLeaf, { maxLength: 5 }), { maxLength: 5 }),
  hostileLeaf,
  fc.constant([[]]),
);

/** Row-major values nested to `shape`. */
const nest = (values: readonly unknown[], shape: readonly number[]): unknown => {
  let at = 0;
  const build = (depth: number): unknown => {
    if (depth === shape.length) return values[at++];
    return Array.from({ length: shape[depth] ?? 0 }, () => build(depth + 1));
  };
  return build(0);
};

const elementCount = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Sizes for the dynamic dims of one request: small, or a zero beside a huge one (the volume is 0,
 * so only the dims themselves can hurt: onnxruntime's own bound on a dim, the response shape).
 */
export const dynamicDims = fc.oneof(
  {
    arbitrary: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }),
    weight: 8,
  },
  {
    arbitrary: fc
      .tuple(fc.constantFrom(2 ** 31, 2 ** 32 + 1, 2 ** 53 - 1, 2 ** 53), fc.boolean())
      .map(([huge, first]) => (first ? [huge, 0, huge, 0] : [0, huge, 0, huge])),
    weight: 1,
  },
);

/** Past this many elements a generated tensor gets no data (the request is refused anyway). */
const MAX_GENERATED_ELEMENTS = 4096;

/** A JSON input that matches `spec` (dynamic dims from `dynamic`), flat or nested. */
export const validJsonInput = (spec: TensorSpec, dynamic: readonly number[]) => {
  const shape = spec.shape.map((d, i) => (d >= 0 ? d : (dynamic[i] ?? 1)));
  const volume = elementCount(shape);
  const count = volume > MAX_GENERATED_ELEMENTS ? 0 : volume;
  return fc
    .record({
      values: fc.array(validElement(spec.datatype), { minLength: count, maxLength: count }),
      nested: fc.boolean(),
    })
    .map(({ values, nested }) => ({
      name: spec.name,
      datatype: spec.datatype,
      shape,
      data:
        nested && shape.length > 1 && volume > 0 && volume === count ? nest(values, shape) : values,
    }));
};

type Fields = Record<string, unknown>;

/** One lie planted in an otherwise valid request. */
type Mutation = (req: { inputs: Fields[]; top: Fields }, target: number) => void;

const mutation = (others: readonly string[]): fc.Arbitrary<Mutation> =>
  fc.oneof(
    hostileShape.map(
      (v): Mutation =>
        (r, i) =>
          setField(r.inputs, i, 'shape', v),
    ),
    hostileDatatype.map(
      (v): Mutation =>
        (r, i) =>
          setField(r.inputs, i, 'datatype', v),
    ),
    hostileName(others).map(
      (v): Mutation =>
        (r, i) =>
          setField(r.inputs, i, 'name', v),
    ),
    hostileData.map(
      (v): Mutation =>
        (r, i) =>
          setField(r.inputs, i, 'data', v),
    ),
    fc.tuple(fc.nat(), hostileLeaf).map(
      ([at, leaf]): Mutation =>
        (r, i) => {
          const data = r.inputs[i]?.data;
          const flat = Array.isArray(data) ? data.flat(8) : [];
          if (flat.length === 0) return;
          flat[at % flat.length] = leaf;
          setField(r.inputs, i, 'data', flat);
        },
    ),
    fc.constantFrom('name', 'datatype', 'shape', 'data').map(
      (field): Mutation =>
        (r, i) =>
          setField(r.inputs, i, field, undefined),
    ),
    fc.oneof(fc.integer({ min: -5, max: 1 << 20 }), hostileLeaf).map(
      (size): Mutation =>
        (r, i) =>
          setField(r.inputs, i, 'parameters', { binary_data_size: size }),
    ),
    fc.constant<Mutation>((r, i) => {
      const input = r.inputs[i];
      if (input !== undefined) r.inputs.push({ ...input });
    }),
    fc.constant<Mutation>((r, i) => {
      r.inputs.splice(i, 1);
    }),
    fc.tuple(fc.constantFrom('id', 'parameters', 'outputs', 'inputs', 'extra'), hostileLeaf).map(
      ([field, v]): Mutation =>
        (r) =>
          (r.top[field] = v),
    ),
    deepValue.map(
      (v): Mutation =>
        (r) =>
          (r.top[['id', 'parameters', 'outputs', 'extra'][r.inputs.length % 4] ?? 'extra'] = v),
    ),
    fc.record({ binary_data_output: hostileLeaf }, { requiredKeys: [] }).map(
      (parameters): Mutation =>
        (r) =>
          (r.top.parameters = parameters),
    ),
  );

const setField = (inputs: Fields[], index: number, field: string, value: unknown): void => {
  const input = inputs[index];
  if (input === undefined) return;
  if (value === undefined) delete input[field];
  else input[field] = value;
};

const outputsArb = (outputs: readonly TensorSpec[]) =>
  fc.oneof(
    { arbitrary: validOutputs(outputs), weight: 6 },
    {
      arbitrary: fc.array(fc.record({ name: hostileName(outputs.map((o) => o.name)) }), {
        maxLength: 3,
      }),
      weight: 1,
    },
  );

/** Outputs as a client names them: none (all), or some, each binary or not. */
const validOutputs = (outputs: readonly TensorSpec[]) =>
  fc.oneof(
    fc.constant(undefined),
    fc.subarray(outputs.map((o) => o.name)).chain((names) =>
      fc.tuple(
        ...names.map((name) =>
          fc.record(
            {
              name: fc.constant(name),
              parameters: fc.record({ binary_data: fc.boolean() }, { requiredKeys: [] }),
            },
            { requiredKeys: ['name'] },
          ),
        ),
      ),
    ),
  );

export const jsonContentType = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 6 },
  {
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      '',
      'text/plain',
      'application/json, application/octet-stream',
      'multipart/form-data; boundary=x',
      'application/json\u0000',
    ),
    weight: 1,
  },
  { arbitrary: fc.constant(undefined), weight: 1 },
);

const modelName = fc.constantFrom(...FUZZ_MODELS);

const inferPath = (model: string, pinned: boolean) =>
  pinned ? `/v2/models/${model}/versions/1/infer` : `/v2/models/${model}/infer`;

/** A valid JSON infer request for one of the models, with a lie planted about half the time. */
const jsonInfer: fc.Arbitrary<FuzzRequest> = fc
  .tuple(modelName, dynamicDims)
  .chain(([model, dynamic]) => {
    const { inputs, outputs } = FUZZ_SIGNATURES[model];
    const names = inputs.map((s) => s.name);
    return fc.record({
      model: fc.constant(model),
      inputs: fc.tuple(...inputs.map((spec) => validJsonInput(spec, dynamic))),
      outputs: outputsArb(outputs),
      id: fc.option(hostileText, { nil: undefined }),
      binaryOutput: fc.option(fc.boolean(), { nil: undefined }),
      mutations: fc.array(fc.tuple(mutation(names), fc.nat()), { maxLength: 2 }),
      contentType: jsonContentType,
      pinned: fc.boolean(),
    });
  })
  .map((r): FuzzRequest => {
    const inputs: Fields[] = r.inputs.map((input) => ({ ...input }));
    const top: Fields = {
      id: r.id,
      outputs: r.outputs,
      parameters: r.binaryOutput === undefined ? undefined : { binary_data_output: r.binaryOutput },
    };
    for (const [mutate, at] of r.mutations) {
      mutate({ inputs, top }, inputs.length === 0 ? 0 : at % inputs.length);
    }
    const body = jsonText({ inputs, ...top });
    const plainType = r.contentType === 'application/json' || r.contentType === undefined;
    return {
      family:
        r.mutations.length > 0 ? 'json-mutated' : plainType ? 'json-valid' : 'json-media-type',
      request: request(
        'POST',
        inferPath(r.model, r.pinned),
        { 'content-type': r.contentType },
        utf8.encode(body),
      ),
    };
  });

// ─── binary tensor data extension ───────────────────────────────────────────────────────────────

/** BYTES elements on the wire: a 4-byte little-endian length, then the bytes; lengths may lie. */
const bytesElements = (count: number) =>
  fc
    .array(
      fc.record({
        bytes: fc.oneof(
          fc.string({ unit: 'binary', maxLength: 8 }).map((s) => utf8.encode(s)),
          fc.uint8Array({ maxLength: 8 }),
          fc.constant(Uint8Array.of(0xc3, 0x28)),
          fc.constant(Uint8Array.of(0xed, 0xa0, 0x80)),
        ),
        lie: fc.oneof(
          { arbitrary: fc.constant(0), weight: 8 },
          { arbitrary: fc.constantFrom(1, -1, 0xffffffff, 0x7fffffff, 1 << 24), weight: 1 },
        ),
      }),
      { minLength: count, maxLength: count },
    )
    .map((elements) =>
      concat(
        elements.map(({ bytes, lie }) => {
          const out = new Uint8Array(4 + bytes.byteLength);
          new DataView(out.buffer).setUint32(0, (bytes.byteLength + lie) >>> 0, true);
          out.set(bytes, 4);
          return out;
        }),
      ),
    );

const binaryChunk = (datatype: Datatype, count: number): fc.Arbitrary<Uint8Array> => {
  if (datatype === 'BYTES') return bytesElements(count);
  const size = elementBytes(datatype) * count;
  if (datatype === 'BOOL') {
    return fc
      .uint8Array({ minLength: size, maxLength: size, max: 1 })
      .chain((bits) =>
        fc.oneof(
          { arbitrary: fc.constant(bits), weight: 6 },
          { arbitrary: fc.uint8Array({ minLength: size, maxLength: size }), weight: 1 },
        ),
      );
  }
  return fc.uint8Array({ minLength: size, maxLength: size });
};

const headerLengthLie = fc.oneof(
  { arbitrary: fc.constant<number | string>(0), weight: 10 },
  { arbitrary: fc.integer({ min: -8, max: 8 }), weight: 2 },
  {
    arbitrary: fc.constantFrom<number | string>(
      'abc',
      '-5',
      '0',
      ' 12 ',
      '1e3',
      '0x10',
      '99999999999999999999',
      '9007199254740993',
      '',
      '١٢',
    ),
    weight: 2,
  },
);

/**
 * A binary-extension request: each input binary or JSON, then the binary parts in header order.
 * Lies: binary_data_size off or not a number, chunks cut or padded, BYTES length prefixes past
 * the end, the Inference-Header-Content-Length header off by a few bytes or not a number, the
 * wrong media type, `data` and `binary_data_size` together.
 */
const binaryInfer: fc.Arbitrary<FuzzRequest> = fc
  .tuple(modelName, dynamicDims)
  .chain(([model, dynamic]) => {
    const { inputs, outputs } = FUZZ_SIGNATURES[model];
    return fc.record({
      model: fc.constant(model),
      parts: fc.tuple(
        ...inputs.map((spec) => {
          const shape = spec.shape.map((d, i) => (d >= 0 ? d : (dynamic[i] ?? 1)));
          const volume = elementCount(shape);
          const count = volume > MAX_GENERATED_ELEMENTS ? 0 : volume;
          return fc.record({
            spec: fc.constant(spec),
            shape: fc.oneof(
              { arbitrary: fc.constant<unknown>(shape), weight: 8 },
              { arbitrary: hostileShape, weight: 1 },
            ),
            json: fc.oneof(
              { arbitrary: fc.constant(undefined), weight: 4 },
              { arbitrary: validJsonInput(spec, dynamic).map((t) => t.data), weight: 1 },
            ),
            chunk: binaryChunk(spec.datatype, count),
            sizeLie: fc.oneof(
              { arbitrary: fc.constant<unknown>(0), weight: 8 },
              {
                arbitrary: fc.constantFrom<unknown>(
                  1,
                  -1,
                  4,
                  -4,
                  'x',
                  1.5,
                  null,
                  2 ** 53,
                  new RawJson('1e999'),
                ),
                weight: 1,
              },
            ),
            chunkLie: fc.oneof(
              { arbitrary: fc.constant(0), weight: 8 },
              { arbitrary: fc.integer({ min: -6, max: 6 }), weight: 1 },
            ),
            both: fc.oneof(
              { arbitrary: fc.constant(false), weight: 12 },
              { arbitrary: fc.constant(true), weight: 1 },
            ),
          });
        }),
      ),
      outputs: outputsArb(outputs),
      binaryOutput: fc.option(fc.boolean(), { nil: undefined }),
      headerLie: headerLengthLie,
      contentType: fc.oneof(
        { arbitrary: fc.constant<string | undefined>('application/octet-stream'), weight: 8 },
        {
          arbitrary: fc.constantFrom<string | undefined>(
            'application/json',
            undefined,
            'Application/Octet-Stream; x=1',
            'application/octet-stream, application/json',
          ),
          weight: 1,
        },
      ),
      trailing: fc.oneof(
        { arbitrary: fc.constant(new Uint8Array(0)), weight: 8 },
        { arbitrary: fc.uint8Array({ minLength: 1, maxLength: 16 }), weight: 1 },
      ),
      pinned: fc.boolean(),
    });
  })
  .map((r): FuzzRequest => {
    const chunks: Uint8Array[] = [];
    const tensors = r.parts.map((p) => {
      const base: Fields = { name: p.spec.name, datatype: p.spec.datatype, shape: p.shape };
      if (p.json !== undefined) return { ...base, data: p.json };
      const chunk =
        p.chunkLie >= 0
          ? concat([p.chunk, new Uint8Array(p.chunkLie)])
          : p.chunk.subarray(0, Math.max(0, p.chunk.byteLength + p.chunkLie));
      chunks.push(chunk);
      const size =
        typeof p.sizeLie === 'number' && Math.abs(p.sizeLie) < 2 ** 30
          ? chunk.byteLength + p.sizeLie
          : p.sizeLie;
      return {
        ...base,
        parameters: { binary_data_size: size },
        ...(p.both ? { data: [1] } : {}),
      };
    });
    const header = utf8.encode(
      jsonText({
        inputs: tensors,
        outputs: r.outputs,
        parameters:
          r.binaryOutput === undefined ? undefined : { binary_data_output: r.binaryOutput },
      }),
    );
    const length =
      typeof r.headerLie === 'number' ? String(header.byteLength + r.headerLie) : r.headerLie;
    const lied =
      r.trailing.byteLength > 0 ||
      r.parts.some(
        (p) => p.sizeLie !== 0 || p.chunkLie !== 0 || p.both || !isShapeOf(p.shape, p.spec),
      );
    return {
      family: lied || r.headerLie !== 0 ? 'binary-lying' : 'binary',
      request: request(
        'POST',
        inferPath(r.model, r.pinned),
        { 'content-type': r.contentType, 'inference-header-content-length': length },
        concat([header, ...chunks, r.trailing]),
      ),
    };
  });

const isShapeOf = (shape: unknown, spec: TensorSpec): boolean =>
  Array.isArray(shape) &&
  shape.length === spec.shape.length &&
  shape.every((d, i) => typeof d === 'number' && (spec.shape[i] === -1 || spec.shape[i] === d));

// ─── V1, noise ──────────────────────────────────────────────────────────────────────────────────

const v1Predict: fc.Arbitrary<FuzzRequest> = fc
  .record({
    model: fc.oneof(modelName, fc.constantFrom('nope', 'A', '')),
    instances: fc.oneof(
      fc
        .array(fc.array(validElement('FP32'), { minLength: 4, maxLength: 4 }), { maxLength: 4 })
        .map((rows) => rows as unknown),
      hostileData,
      fc.array(hostileData, { maxLength: 3 }),
    ),
    extra: fc.option(hostileLeaf, { nil: undefined }),
    contentType: jsonContentType,
  })
  .map(
    (r): FuzzRequest => ({
      family: 'v1',
      request: request(
        'POST',
        `/v1/models/${r.model}:predict`,
        { 'content-type': r.contentType },
        utf8.encode(jsonText({ instances: r.instances, signature_name: r.extra })),
      ),
    }),
  );

const VALID_PATHS = [
  '/v2',
  '/v2/',
  '/v2/health/live',
  '/v2/health/ready',
  '/v2/models',
  ...FUZZ_MODELS.flatMap((m) => [
    `/v2/models/${m}`,
    `/v2/models/${m}/ready`,
    `/v2/models/${m}/infer`,
    `/v2/models/${m}/versions/1`,
    `/v2/models/${m}/versions/1/ready`,
    `/v2/models/${m}/versions/2/infer`,
    `/v1/models/${m}:predict`,
    `/v2/models/${m}/explain`,
    `/v2/models/${m}/versions/1/explain`,
    `/v1/models/${m}:explain`,
  ]),
];

/** Every UTF-8 byte percent-encoded (`encodeURIComponent` throws on lone surrogates). */
const percentEncoded = (text: string): string =>
  Array.from(Buffer.from(text, 'utf8'), (b) => `%${b.toString(16).padStart(2, '0')}`).join('');

export const hostilePath: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...VALID_PATHS),
  fc.constantFrom(
    '',
    '/',
    '//v2//models',
    '/v2/models/single/versions/0/infer',
    '/v2/models/single/versions/01/infer',
    '/v2/models/single/versions/99999999999/infer',
    '/v2/models/single/versions/-1/infer',
    '/v2/models/single/versions/1e3/infer',
    '/v2/models/%73ingle/infer',
    '/v2/models/%E0%A4%A/infer',
    '/v2/models/%00/infer',
    '/v2/models/../models/single/infer',
    '/v1/models/single:predict:predict',
    '/v1/models/:predict',
    `/v2/models/${'a'.repeat(64)}/infer`,
    `/v2/models/${'a'.repeat(10_000)}`,
    '/v2/models/__proto__/infer',
    '/v2/models/constructor',
  ),
  fc
    .array(
      fc.oneof(
        fc.constantFrom('v2', 'v1', 'models', 'versions', 'infer', 'ready', 'single', '1', '%', ''),
        hostileText,
        hostileText.map(percentEncoded),
      ),
      { maxLength: 8 },
    )
    .map((segments) => `/${segments.join('/')}`),
);

const method = fc.oneof(
  { arbitrary: fc.constantFrom('GET', 'POST'), weight: 4 },
  {
    arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'post', 'Get', 'TRACE'),
    weight: 1,
  },
  { arbitrary: hostileText, weight: 1 },
);

const noiseHeaders = fc.dictionary(
  fc.oneof(
    fc.constantFrom('content-type', 'inference-header-content-length', 'accept', 'content-length'),
    fc.string({ maxLength: 12 }),
  ),
  fc.oneof(hostileText, fc.nat().map(String), fc.constant('application/octet-stream')),
  { maxKeys: 4 },
);

const noise: fc.Arbitrary<FuzzRequest> = fc
  .record({
    method,
    path: hostilePath,
    headers: noiseHeaders,
    body: fc.oneof(
      fc.constant(undefined),
      fc.constant(new Uint8Array(0)),
      fc.uint8Array({ maxLength: 512 }),
      hostileText.map((s) => utf8.encode(s)),
      fc.jsonValue({ maxDepth: 4 }).map((v) => utf8.encode(JSON.stringify(v))),
      deepValue.map((v) => utf8.encode(v.text)),
      fc.constant(utf8.encode('{"inputs": [')),
    ),
  })
  .map(
    (r): FuzzRequest => ({
      family: 'noise',
      request: request(r.method, r.path, r.headers, r.body),
    }),
  );

/** A body just over the default 6 MiB cap, made once: the cap must refuse it before parsing. */
const OVERSIZED = new Uint8Array(6 * MiB + 1).fill(0x20);

const oversized: fc.Arbitrary<FuzzRequest> = fc.constantFrom(...FUZZ_MODELS).map((model) => ({
  family: 'oversized',
  request: request(
    'POST',
    inferPath(model, false),
    { 'content-type': 'application/json' },
    OVERSIZED,
  ),
}));

const refusalTensor = (name: string, datatype: string, shape: number[], data: number[]) => ({
  name,
  datatype,
  shape,
  data,
});

/**
 * Requests with the right names, datatypes and ranks whose values or dims onnxruntime refuses
 * when it runs them: ids past the `gather` table, `arithmetic` operands that do not broadcast.
 */
export const runtimeRefusals: fc.Arbitrary<HttpRequest> = fc
  .oneof(
    fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 8 }).map((ids) => ({
      model: 'gather',
      inputs: [refusalTensor('ids', 'INT64', [ids.length], ids)],
    })),
    fc
      .tuple(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
      )
      .map(([n, m, p, q]) => ({
        model: 'arithmetic',
        inputs: [
          refusalTensor('a', 'FP32', [n, m], Array(n * m).fill(1)),
          refusalTensor('b', 'FP32', [n, m], Array(n * m).fill(2)),
          refusalTensor('c', 'FP32', [p, q], Array(p * q).fill(3)),
          refusalTensor('scale', 'FP64', [], [1]),
        ],
      })),
  )
  .map(({ model, inputs }) => ({
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers: { 'content-type': 'application/json' },
    query: {},
    body: new TextEncoder().encode(JSON.stringify({ inputs })),
    requestId: `runtime-refusal-${model}`,
  }));

/** JSON nested past the depth cap (64) in a place the codec would otherwise keep: 400, never 5xx. */
const deepJson: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.constantFrom(...FUZZ_MODELS),
    fc.integer({ min: 65, max: 20_000 }),
    fc.constantFrom('[', '{"a":'),
    fc.constantFrom('parameters', 'id', 'inputs'),
  )
  .map(([model, depth, open, field]) => {
    const close = open === '[' ? ']' : '}';
    const deep = `${open.repeat(depth)}${open === '[' ? '' : '1'}${close.repeat(depth)}`;
    return {
      family: 'deep-json',
      request: {
        method: 'POST',
        path: `/v2/models/${model}/infer`,
        headers: { 'content-type': 'application/json' },
        query: {},
        body: new TextEncoder().encode(`{"inputs": [], "${field}": ${deep}}`),
        requestId: `deep-${depth}`,
      },
    };
  });

let explainRequests: fc.Arbitrary<FuzzRequest> | undefined;

/** Everything a client can send the app, weighted toward requests that reach the codec. */
export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { arbitrary: jsonInfer, weight: 6 },
  {
    arbitrary: fc.constant(undefined).chain(() => {
      explainRequests ??= fc.oneof(
        { arbitrary: explainRequest(), weight: 3 },
        { arbitrary: explainV1Request(), weight: 1 },
      );
      return explainRequests;
    }),
    weight: 2,
  },
  { arbitrary: binaryInfer, weight: 5 },
  { arbitrary: v1Predict, weight: 2 },
  { arbitrary: noise, weight: 3 },
  { arbitrary: oversized, weight: 1 },
  { arbitrary: deepJson, weight: 1 },
  {
    arbitrary: runtimeRefusals.map((request) => ({ family: 'runtime-refusal', request })),
    weight: 2,
  },
);

// ─── API Gateway HTTP API payload 2.0 events ────────────────────────────────────────────────────

export interface FuzzEvent {
  family: string;
  event: APIGatewayProxyEventV2;
}

const requestContext = (
  method: string,
  path: string,
  requestId: string,
): APIGatewayEventRequestContextV2 => ({
  accountId: '000000000000',
  apiId: 'fuzz',
  domainName: 'fuzz.execute-api.us-east-1.amazonaws.com',
  domainPrefix: 'fuzz',
  http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'fuzz' },
  requestId,
  routeKey: '$default',
  stage: '$default',
  time: '01/Jan/2030:00:00:00 +0000',
  timeEpoch: 1_893_456_000_000,
});

/**
 * How the body rides in the event. API Gateway base64-encodes bodies it deems binary; the
 * adapter must cope with every combination, including the flag and the encoding disagreeing.
 */
const bodyEncoding = fc.oneof(
  { arbitrary: fc.constantFrom('base64', 'text'), weight: 6 },
  {
    arbitrary: fc.constantFrom(
      'base64-flag-on-text',
      'text-flag-on-base64',
      'base64-garbage',
      'empty-string',
      'missing',
    ),
    weight: 2,
  },
);

/**
 * Everything the fuzzed app requests carry, as payload 2.0 events: the body in every encoding,
 * header names as sent (not lower-cased), multi-value headers joined with commas, query strings,
 * cookies, and a `rawPath` that disagrees with `requestContext.http.path`.
 */
export const fuzzEvent: fc.Arbitrary<FuzzEvent> = fc
  .record({
    inner: fuzzRequest,
    encoding: bodyEncoding,
    upperHeaders: fc.oneof(
      { arbitrary: fc.constant(false), weight: 6 },
      { arbitrary: fc.constant(true), weight: 1 },
    ),
    extraHeaders: fc.option(noiseHeaders, { nil: undefined }),
    query: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), hostileText, { maxKeys: 3 }), {
      nil: undefined,
    }),
    cookies: fc.option(fc.array(hostileText, { maxLength: 2 }), { nil: undefined }),
    otherPath: fc.option(hostilePath, { nil: undefined }),
  })
  .map((r): FuzzEvent => {
    const { request: req } = r.inner;
    const body = req.body ?? new Uint8Array(0);
    const encoded = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    let eventBody: string | undefined;
    let isBase64Encoded = false;
    switch (r.encoding) {
      case 'base64':
        eventBody = encoded.toString('base64');
        isBase64Encoded = true;
        break;
      case 'text':
        eventBody = encoded.toString('utf8');
        break;
      case 'base64-flag-on-text':
        eventBody = encoded.toString('utf8');
        isBase64Encoded = true;
        break;
      case 'text-flag-on-base64':
        eventBody = encoded.toString('base64');
        break;
      case 'base64-garbage':
        eventBody = `${encoded.toString('base64').slice(1)}!*~\u00e9=`;
        isBase64Encoded = true;
        break;
      case 'empty-string':
        eventBody = '';
        isBase64Encoded = true;
        break;
      case 'missing':
        eventBody = undefined;
        break;
    }
    if (req.body === undefined && r.encoding !== 'empty-string') eventBody = undefined;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries({ ...req.headers, ...r.extraHeaders })) {
      if (value === undefined) continue;
      const key = r.upperHeaders ? name.toUpperCase() : name;
      headers[key] = headers[key] === undefined ? value : `${headers[key]},${value}`;
    }
    const event: APIGatewayProxyEventV2 = {
      version: '2.0',
      routeKey: '$default',
      rawPath: req.path,
      rawQueryString: new URLSearchParams(r.query ?? {}).toString(),
      ...(r.cookies === undefined ? {} : { cookies: r.cookies }),
      headers,
      ...(r.query === undefined ? {} : { queryStringParameters: r.query }),
      requestContext: requestContext(req.method, r.otherPath ?? req.path, req.requestId),
      ...(eventBody === undefined ? {} : { body: eventBody }),
      isBase64Encoded,
    };
    return { family: `${r.inner.family}/${r.encoding}`, event };
  });
