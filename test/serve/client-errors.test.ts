import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATATYPES } from '../../src/onnx/index.ts';
import type { HttpRequest, HttpResponse } from '../../src/protocol/index.ts';
import { createPredictApp, type PredictApp } from '../../src/serve/index.ts';
import {
  binaryInferRequest,
  bodyText,
  type ClientTensor,
  httpRequest,
  postJson,
} from '../support/client.ts';
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
    identity: identityModel(),
    ...Object.fromEntries(DATATYPES.map((d) => [`id-${d.toLowerCase()}`, identityModel([d])])),
  });
  app = createPredictApp({ provider, limits: { maxBodyBytes: 64 * 1024, maxElements: 10_000 } });
});

afterAll(() => provider.release());

const INFER = '/v2/models/single/infer';

/** Every refusal is a 4xx whose JSON error contains each of `says`. */
const expectRefused = (res: HttpResponse, status: number, ...says: (string | RegExp)[]): string => {
  expect(res.headers['content-type']).toBe('application/json');
  const body = JSON.parse(bodyText(res)) as { error: unknown };
  expect(Object.keys(body)).toEqual(['error']);
  expect(typeof body.error).toBe('string');
  expect({ status: res.status, error: body.error }).toEqual({ status, error: expect.any(String) });
  for (const s of says) expect(body.error).toMatch(s);
  return body.error as string;
};

const x = (data: unknown, extra: object = {}) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data, ...extra }],
});

describe('malformed requests', () => {
  it('refuses a body that is not JSON, saying where it broke', async () => {
    expectRefused(await app(postJson(INFER, '{"inputs": [')), 400, 'not valid JSON', '"inputs"');
  });

  it('refuses JSON that is not an infer request', async () => {
    expectRefused(await app(postJson(INFER, '[1, 2]')), 400, 'must be a JSON object');
    expectRefused(await app(postJson(INFER, { inputs: [] })), 400, 'non-empty array', 'x');
    expectRefused(await app(postJson(INFER, { inputs: [{ shape: [1] }] })), 400, 'string "name"');
    expectRefused(
      await app(postJson(INFER, { ...x([1, 2, 3, 4]), id: 7 })),
      400,
      '"id" must be a string',
    );
  });

  it('refuses deeply nested values without walking into them', async () => {
    const roomy = createPredictApp({ provider });
    const deep = `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`;
    const body = `{"id": ${deep}, "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4], "parameters": ${deep}}]}`;
    expectRefused(
      await roomy(postJson(INFER, body)),
      400,
      'nests arrays or objects more than 64 levels deep',
    );
    const nested = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const tensor = `{"name": "x", "datatype": ${nested}, "shape": [1, 4], "data": [1, 2, 3, 4]}`;
    expectRefused(
      await roomy(postJson(INFER, `{"inputs": [${tensor}]}`)),
      400,
      'nests arrays or objects more than 64 levels deep',
    );
  });

  it('refuses an FP32 value FP32 cannot hold instead of running it as Infinity (found by attack)', async () => {
    expectRefused(await app(postJson(INFER, x([1e39, 1, 1, 1]))), 400, 'within ±3.4028235e38');
  });

  it('refuses a body that is not UTF-8', async () => {
    const res = await app(
      httpRequest('POST', INFER, {
        body: Uint8Array.of(0x7b, 0xff, 0x7d),
        headers: { 'content-type': 'application/json' },
      }),
    );
    expectRefused(res, 400, 'not valid UTF-8');
  });

  it('refuses an empty body', async () => {
    expectRefused(await app(httpRequest('POST', INFER)), 400, 'no body');
  });

  it('refuses a content type other than JSON or the binary extension with 415', async () => {
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const res = await app(
        httpRequest('POST', INFER, {
          body: JSON.stringify(x([1, 2, 3, 4])),
          headers: { 'content-type': type },
        }),
      );
      expectRefused(res, 415, 'send application/json');
    }
  });

  it('accepts JSON with a charset and with no content type at all', async () => {
    const headerSets: Record<string, string>[] = [
      { 'content-type': 'application/json; charset=utf-8' },
      {},
    ];
    for (const headers of headerSets) {
      const res = await app(
        httpRequest('POST', INFER, { body: JSON.stringify(x([1, 2, 3, 4])), headers }),
      );
      expect(res.status).toBe(200);
    }
  });

  it('refuses octet-stream without Inference-Header-Content-Length', async () => {
    const res = await app(
      httpRequest('POST', INFER, {
        body: '{}',
        headers: { 'content-type': 'application/octet-stream' },
      }),
    );
    expectRefused(res, 400, 'Inference-Header-Content-Length');
  });

  it('refuses a model name or version that cannot exist', async () => {
    expectRefused(await app(postJson('/v2/models/Bad Name/infer', x([]))), 400, 'not a model name');
    expectRefused(
      await app(postJson('/v2/models/single/versions/0/infer', x([]))),
      400,
      'positive integers',
    );
    expectRefused(
      await app(postJson('/v2/models/single/versions/abc/infer', x([]))),
      400,
      'not a version',
    );
  });
});

describe('unknown models and versions', () => {
  it('answers 404 for a model that does not exist, on every model route', async () => {
    for (const req of [
      postJson('/v2/models/nope/infer', x([1, 2, 3, 4])),
      postJson('/v1/models/nope:predict', { instances: [[1, 2, 3, 4]] }),
      httpRequest('GET', '/v2/models/nope'),
      httpRequest('GET', '/v2/models/nope/ready'),
    ]) {
      expectRefused(await app(req), 404, 'model "nope" does not exist');
    }
  });

  it('answers 404 for a version that does not exist', async () => {
    expectRefused(
      await app(postJson('/v2/models/single/versions/9/infer', x([1, 2, 3, 4]))),
      404,
      'version 9',
    );
    expectRefused(await app(httpRequest('GET', '/v2/models/single/versions/9')), 404, 'version 9');
  });
});

describe('inputs that do not fit the signature', () => {
  it('names an unknown input and lists the expected ones', async () => {
    const res = await app(
      postJson(INFER, {
        inputs: [{ name: 'X', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }],
      }),
    );
    expectRefused(res, 400, 'input "X"', 'its inputs are: x');
  });

  it('names missing and duplicated inputs', async () => {
    const a = { name: 'a', datatype: 'FP32', shape: [1, 1], data: [1] };
    expectRefused(
      await app(postJson('/v2/models/arithmetic/infer', { inputs: [a] })),
      400,
      'missing input(s): b, c, scale',
    );
    expectRefused(
      await app(postJson('/v2/models/arithmetic/infer', { inputs: [a, a] })),
      400,
      'input "a"',
      'more than once',
    );
  });

  it('names the datatype the model takes', async () => {
    expectRefused(
      await app(postJson(INFER, x([1, 2, 3, 4], { datatype: 'FP64' }))),
      400,
      'input "x"',
      'datatype is "FP64"',
      '"datatype": "FP32"',
    );
    expectRefused(await app(postJson(INFER, x([1, 2, 3, 4], { datatype: 'fp32' }))), 400, '"FP32"');
  });

  it('names the shape the model takes, with -1 for dynamic dims', async () => {
    expectRefused(
      await app(postJson(INFER, x([1, 2, 3], { shape: [1, 3] }))),
      400,
      'input "x"',
      'needs 4',
      'FP32 [-1, 4]',
    );
    expectRefused(
      await app(postJson(INFER, x([1, 2, 3, 4], { shape: [4] }))),
      400,
      'rank 1',
      'FP32 [-1, 4]',
    );
    expectRefused(
      await app(postJson(INFER, x([1, 2, 3, 4], { shape: [1, -4] }))),
      400,
      'non-negative integers',
    );
    expectRefused(
      await app(postJson(INFER, x([1, 2, 3, 4], { shape: '1,4' }))),
      400,
      'non-negative integers',
    );
  });

  it('refuses data that does not fill the shape, flat or nested', async () => {
    expectRefused(
      await app(postJson(INFER, x([1, 2, 3]))),
      400,
      'input "x"',
      'array of 1',
      'row-major',
    );
    expectRefused(
      await app(
        postJson(
          INFER,
          x([
            [1, 2],
            [3, 4],
          ]),
        ),
      ),
      400,
      'input "x"',
    );
    expectRefused(
      await app(postJson(INFER, x([[1, 2, 3, 4, 5]]))),
      400,
      'data[0] must be an array of 4',
    );
    expectRefused(await app(postJson(INFER, x([[[1], 2, 3, 4]]))), 400, 'nested deeper');
    expectRefused(await app(postJson(INFER, x(5))), 400, 'array of 4');
    expectRefused(
      await app(postJson(INFER, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }] })),
      400,
      'no "data"',
    );
  });

  it('refuses values the datatype cannot hold exactly', async () => {
    expectRefused(
      await app(postJson(INFER, x([1, 2, 'three', 4]))),
      400,
      'element 2 is "three"',
      'FP32 data must be numbers',
    );
    expectRefused(await app(postJson(INFER, x([1, null, 3, 4]))), 400, 'element 1 is null');
    const identity = (datatype: string, data: unknown[]) => ({
      inputs: [{ name: `x_${datatype.toLowerCase()}`, datatype, shape: [1, 3], data }],
    });
    const cases: [string, unknown[], string][] = [
      ['INT8', [1, 128, 0], 'element 1 is 128; INT8 data must be integers in [-128, 127]'],
      ['UINT32', [-1, 0, 0], 'element 0 is -1'],
      ['INT32', [1.5, 0, 0], 'element 0 is 1.5'],
      ['INT64', [2 ** 60, 0, 0], 'send them as strings'],
      ['INT64', ['9223372036854775808', 0, 0], 'element 0'],
      ['UINT64', [0.5, 0, 0], 'element 0 is 0.5'],
      ['BOOL', [1, 0, true], 'BOOL data must be true or false'],
      ['BYTES', ['a', 2, 'c'], 'BYTES data must be strings'],
      ['FP16', [1, 2, 3], 'FP16 has no JSON form'],
    ];
    for (const [datatype, data, says] of cases) {
      const res = await app(
        postJson(`/v2/models/id-${datatype.toLowerCase()}/infer`, identity(datatype, data)),
      );
      expectRefused(res, 400, `input "x_${datatype.toLowerCase()}"`, says);
    }
  });

  it('names an unknown requested output and a bad output parameter', async () => {
    expectRefused(
      await app(postJson(INFER, { ...x([1, 2, 3, 4]), outputs: [{ name: 'z' }] })),
      400,
      'output "z"',
      'its outputs are: y, total',
    );
    expectRefused(
      await app(postJson(INFER, { ...x([1, 2, 3, 4]), outputs: 'y' })),
      400,
      '"outputs" must be an array',
    );
    expectRefused(
      await app(
        postJson(INFER, {
          ...x([1, 2, 3, 4]),
          outputs: [{ name: 'y', parameters: { binary_data: 'yes' } }],
        }),
      ),
      400,
      'binary_data must be true or false',
    );
  });

  it('refuses V1 :predict on a model with several inputs, pointing to V2', async () => {
    expectRefused(
      await app(postJson('/v1/models/arithmetic:predict', { instances: [[1]] })),
      400,
      'single-input',
      '/v2/models/arithmetic/infer',
    );
    expectRefused(
      await app(postJson('/v1/models/single:predict', { inputs: [[1, 2, 3, 4]] })),
      400,
      '"instances"',
    );
    expectRefused(
      await app(postJson('/v1/models/single:predict', { instances: [[1, 2, 3]] })),
      400,
      'input "x"',
      'needs 4',
    );
  });
});

describe('caps', () => {
  it('refuses a body over the cap with 413 before reading it', async () => {
    const big = httpRequest('POST', INFER, {
      body: new Uint8Array(64 * 1024 + 1).fill(0x20),
      headers: { 'content-type': 'application/json' },
    });
    expectRefused(await app(big), 413, 'over the cap of 65536');
  });

  it('refuses too many elements with 413, from the shape alone', async () => {
    const res = await app(postJson(INFER, x([], { shape: [100_000, 4] })));
    expectRefused(res, 413, 'over the cap of 10000 elements');
    const huge = await app(postJson(INFER, x([], { shape: [2 ** 40, 4] })));
    expectRefused(huge, 413, 'over the cap');
  });

  it('counts elements across all inputs against the cap', async () => {
    const input = (name: string) => ({ name, datatype: 'FP32', shape: [50, 70], data: [] });
    const res = await app(
      postJson('/v2/models/arithmetic/infer', { inputs: [input('a'), input('b'), input('c')] }),
    );
    expectRefused(res, 413, 'in total');
  });

  it('refuses a response over the cap with 413', async () => {
    const small = createPredictApp({ provider, limits: { maxResponseBytes: 100 } });
    expectRefused(
      await small(postJson(INFER, x([1, 2, 3, 4]))),
      413,
      'response would be',
      'smaller batch',
    );
  });
});

describe('binary tensor data whose lengths lie', () => {
  const tensor: ClientTensor = {
    name: 'x',
    datatype: 'FP32',
    shape: [1, 4],
    data: Float32Array.of(1, 2, 3, 4),
  };
  const withHeader = (req: HttpRequest, headerLength: string, body?: Uint8Array): HttpRequest => ({
    ...req,
    headers: { ...req.headers, 'inference-header-content-length': headerLength },
    ...(body ? { body } : {}),
  });
  const valid = () => binaryInferRequest(INFER, [tensor]);

  it('serves the honest request', async () => {
    expect((await app(valid())).status).toBe(200);
  });

  it('refuses a header length beyond the body, zero, negative or not a number', async () => {
    const req = valid();
    const size = req.body?.byteLength ?? 0;
    for (const length of [String(size + 1), '0', '-5', 'abc', '1e3', '']) {
      expectRefused(await app(withHeader(req, length)), 400, 'Inference-Header-Content-Length');
    }
  });

  it('refuses a header length that cuts the JSON', async () => {
    const req = valid();
    const real = Number(req.headers['inference-header-content-length']);
    expectRefused(
      await app(withHeader(req, String(real - 3))),
      400,
      'JSON header',
      'not valid JSON',
    );
  });

  it('refuses binary data shorter or longer than the binary_data_size declared', async () => {
    const req = valid();
    const body = req.body ?? new Uint8Array();
    expectRefused(
      await app(
        withHeader(
          req,
          req.headers['inference-header-content-length'] ?? '',
          body.subarray(0, body.byteLength - 1),
        ),
      ),
      400,
      'declare 16 bytes',
      '15 bytes follow',
    );
    const longer = new Uint8Array(body.byteLength + 4);
    longer.set(body);
    expectRefused(
      await app(withHeader(req, req.headers['inference-header-content-length'] ?? '', longer)),
      400,
      'declare 16 bytes',
      '20 bytes follow',
    );
  });

  it('refuses a binary_data_size that does not match the shape', async () => {
    const req = binaryInferRequest(INFER, [
      { ...tensor, shape: [1, 4], data: Float32Array.of(1, 2, 3) },
    ]);
    expectRefused(await app(req), 400, 'input "x"', 'binary_data_size is 12', 'needs 16 bytes');
  });

  it('refuses a BYTES element whose length prefix runs past its data', async () => {
    const header = JSON.stringify({
      inputs: [
        { name: 'x_bytes', datatype: 'BYTES', shape: [1, 3], parameters: { binary_data_size: 8 } },
      ],
    });
    const headerBytes = new TextEncoder().encode(header);
    const body = new Uint8Array(headerBytes.byteLength + 8);
    body.set(headerBytes);
    new DataView(body.buffer).setUint32(headerBytes.byteLength, 100, true);
    const res = await app(
      httpRequest('POST', '/v2/models/id-bytes/infer', {
        body,
        headers: { 'inference-header-content-length': String(headerBytes.byteLength) },
      }),
    );
    expectRefused(res, 400, 'input "x_bytes"', 'declares 100 bytes');
  });

  it('refuses binary_data_size without the header, and with data beside it', async () => {
    expectRefused(
      await app(postJson(INFER, x(undefined, { parameters: { binary_data_size: 16 } }))),
      400,
      'no Inference-Header-Content-Length',
    );
    const header = JSON.stringify(x([1, 2, 3, 4], { parameters: { binary_data_size: 16 } }));
    const res = await app(
      httpRequest('POST', INFER, {
        body: header,
        headers: { 'inference-header-content-length': String(header.length) },
      }),
    );
    expectRefused(res, 400, 'both "data" and parameters.binary_data_size');
  });

  it('refuses a binary BOOL byte other than 0 or 1', async () => {
    const header = JSON.stringify({
      inputs: [
        { name: 'x_bool', datatype: 'BOOL', shape: [1, 3], parameters: { binary_data_size: 3 } },
      ],
    });
    const body = new Uint8Array([...new TextEncoder().encode(header), 1, 2, 0]);
    const res = await app(
      httpRequest('POST', '/v2/models/id-bool/infer', {
        body,
        headers: { 'inference-header-content-length': String(header.length) },
      }),
    );
    expectRefused(res, 400, 'input "x_bool"', 'element 1 is byte 2');
  });
});
