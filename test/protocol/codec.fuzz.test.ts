import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DATATYPES } from '../../src/onnx/index.ts';
import type { HttpRequest } from '../../src/protocol/index.ts';
import { createPredictApp, type PredictApp } from '../../src/serve/index.ts';
import {
  arithmeticModel,
  identityModel,
  SessionProvider,
  singleInputModel,
} from '../support/conformance-models.ts';

let provider: SessionProvider;
let app: PredictApp;

beforeAll(async () => {
  provider = await SessionProvider.create({
    arithmetic: arithmeticModel(),
    single: singleInputModel(),
    bytes: identityModel(['BYTES', 'INT64', 'BOOL']),
  });
  app = createPredictApp({ provider, limits: { maxBodyBytes: 16 * 1024, maxElements: 4096 } });
});

afterAll(() => provider.release());

const utf8 = new TextEncoder();

const path = fc.oneof(
  fc.constantFrom(
    '/v2',
    '/v2/',
    '/v2/health/live',
    '/v2/health/ready',
    '/v2/models',
    '/v2/models/single',
    '/v2/models/single/infer',
    '/v2/models/arithmetic/infer',
    '/v2/models/bytes/infer',
    '/v2/models/single/versions/1/infer',
    '/v2/models/single/versions/1/ready',
    '/v1/models/single:predict',
    '/v1/models/arithmetic:predict',
  ),
  fc
    .array(
      fc.oneof(
        fc.constantFrom(
          'v2',
          'v1',
          'models',
          'versions',
          'infer',
          'single',
          '%',
          '%E0%A4%A',
          ':predict',
        ),
        fc.string(),
      ),
      { maxLength: 7 },
    )
    .map((segments) => `/${segments.join('/')}`),
);

const name = fc.constantFrom(
  'x',
  'a',
  'b',
  'c',
  'scale',
  'x_bytes',
  'x_int64',
  'x_bool',
  'nope',
  '',
);
const dims = fc.array(
  fc.oneof(fc.integer({ min: -2, max: 5 }), fc.constant(2 ** 40), fc.double()),
  { maxLength: 4 },
);
const leaf = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.bigInt().map(String),
  fc.constantFrom('NaN', 'Infinity'),
);
const data = fc.oneof(
  fc.array(leaf, { maxLength: 24 }),
  fc.array(fc.array(leaf, { maxLength: 6 }), { maxLength: 6 }),
  fc.jsonValue({ maxDepth: 3 }),
);
const input = fc.record(
  {
    name,
    datatype: fc.oneof(fc.constantFrom(...DATATYPES), fc.string()),
    shape: dims,
    data,
    parameters: fc.record(
      { binary_data_size: fc.oneof(fc.integer({ min: -1, max: 64 }), fc.string()) },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['name'] },
);
const inferJson = fc.record(
  {
    id: fc.oneof(fc.string(), fc.integer()),
    inputs: fc.array(input, { maxLength: 5 }),
    outputs: fc.oneof(
      fc.array(
        fc.record(
          { name, parameters: fc.record({ binary_data: fc.oneof(fc.boolean(), fc.string()) }) },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
      fc.jsonValue({ maxDepth: 1 }),
    ),
    parameters: fc.record(
      { binary_data_output: fc.oneof(fc.boolean(), fc.integer()) },
      { requiredKeys: [] },
    ),
    instances: data,
  },
  { requiredKeys: [] },
);

/** Bodies from pure noise to nearly valid requests, optionally trailed by binary bytes. */
const body = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 256 }),
  fc.string().map((s) => utf8.encode(s)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => utf8.encode(JSON.stringify(v))),
  fc.tuple(inferJson, fc.uint8Array({ maxLength: 96 })).map(([json, tail]) => {
    const head = utf8.encode(JSON.stringify(json));
    const out = new Uint8Array(head.byteLength + tail.byteLength);
    out.set(head);
    out.set(tail, head.byteLength);
    return out;
  }),
);

const headers = fc.record(
  {
    'content-type': fc.oneof(
      fc.constantFrom(
        'application/json',
        'application/octet-stream',
        'text/plain',
        'application/json; charset=utf-8',
        '',
      ),
      fc.string(),
    ),
    'inference-header-content-length': fc.oneof(fc.nat({ max: 400 }).map(String), fc.string()),
  },
  { requiredKeys: [] },
);

const noise = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'post'),
    path,
    headers,
    body,
  })
  .map(
    (r): HttpRequest => ({
      method: r.method,
      path: r.path,
      headers: r.headers,
      query: {},
      body: r.body,
      requestId: 'fuzz',
    }),
  );

interface Mutation {
  shape?: unknown;
  datatype?: unknown;
  name?: string;
  element?: [number, unknown];
}

const small = (n: number) => fc.integer({ min: -n, max: n });

/**
 * A valid request for `single` (x: FP32 [batch, 4]), JSON or binary, with at most one field
 * mutated and the binary lengths possibly off by a few bytes: the near misses a codec mishandles.
 */
const nearMiss = fc
  .record({
    rows: fc.integer({ min: 0, max: 3 }),
    values: fc.array(fc.float(), { minLength: 12, maxLength: 12 }),
    nested: fc.boolean(),
    mutation: fc.option(
      fc.oneof(
        fc.record({ shape: dims }),
        fc.record({ datatype: fc.oneof(fc.constantFrom(...DATATYPES), fc.string()) }),
        fc.record({ name }),
        fc.record({ element: fc.tuple(fc.nat(11), leaf) }),
      ),
    ),
    binary: fc.boolean(),
    binaryOutput: fc.boolean(),
    sizeDelta: fc.oneof(fc.constant(0), small(5)),
    headerDelta: fc.oneof(fc.constant(0), small(5)),
  })
  .map((r): HttpRequest => {
    const values: unknown[] = r.values
      .slice(0, r.rows * 4)
      .map((v) => (Number.isFinite(v) ? v : 0));
    const mutation: Mutation = r.mutation ?? {};
    if (mutation.element && mutation.element[0] < values.length) {
      values[mutation.element[0]] = mutation.element[1];
    }
    const tensor: Record<string, unknown> = {
      name: 'name' in mutation ? mutation.name : 'x',
      datatype: 'datatype' in mutation ? mutation.datatype : 'FP32',
      shape: 'shape' in mutation ? mutation.shape : [r.rows, 4],
    };
    const parameters = { binary_data_output: r.binaryOutput };
    if (!r.binary) {
      const data = r.nested
        ? Array.from({ length: r.rows }, (_, i) => values.slice(i * 4, i * 4 + 4))
        : values;
      return {
        method: 'POST',
        path: '/v2/models/single/infer',
        headers: { 'content-type': 'application/json' },
        query: {},
        body: utf8.encode(JSON.stringify({ inputs: [{ ...tensor, data }], parameters })),
        requestId: 'fuzz',
      };
    }
    const binary = new Float32Array(values.map((v) => (typeof v === 'number' ? v : 0)));
    tensor.parameters = { binary_data_size: binary.byteLength + r.sizeDelta };
    const head = utf8.encode(JSON.stringify({ inputs: [tensor], parameters }));
    const out = new Uint8Array(head.byteLength + binary.byteLength);
    out.set(head);
    out.set(new Uint8Array(binary.buffer), head.byteLength);
    return {
      method: 'POST',
      path: '/v2/models/single/infer',
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(head.byteLength + r.headerDelta),
      },
      query: {},
      body: out,
      requestId: 'fuzz',
    };
  });

const request = fc.oneof({ arbitrary: noise, weight: 1 }, { arbitrary: nearMiss, weight: 2 });

it('never answers 5xx to anything a client can send, and every refusal is a JSON error', async () => {
  await fc.assert(
    fc.asyncProperty(request, async (req) => {
      const res = await app(req);
      expect(res.status, `${req.method} ${req.path}`).toBeLessThan(500);
      if (res.status >= 400) {
        expect(res.headers['content-type']).toBe('application/json');
        const parsed = JSON.parse(res.body as string) as { error?: unknown };
        expect(typeof parsed.error).toBe('string');
        expect((parsed.error as string).length).toBeGreaterThan(10);
      }
    }),
    { numRuns: 200 },
  );
});
