import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseEmfLine } from '../../../src/metrics/index.ts';
import { DATATYPES } from '../../../src/onnx/index.ts';
import type { HttpRequest } from '../../../src/protocol/index.ts';
import { keys, Registry } from '../../../src/registry/index.ts';
import { ORT_TYPES } from '../../../src/runtime/index.ts';
import {
  binaryInferRequest,
  bodyText,
  bytesOf,
  type ClientTensor,
  fromOrt,
  jsonInferBody,
  postJson,
  readInferResponse,
} from '../../support/client.ts';
import {
  arithmeticModel,
  gatherModel,
  identityModel,
  sileroLegacyPath,
  singleInputModel,
  tensorName,
} from '../../support/conformance-models.ts';
import { s3Env, startTestS3, type TestS3 } from '../../support/local-s3.ts';
import { invoke } from '../../support/predict-fixtures.ts';
import { overwrite, registerVersion, setAliases } from '../../support/registry.ts';

type Handler = typeof import('../../../functions/predict/handler.ts').handler;

let s3: TestS3;
let tmp: string;
let handler: Handler;
let storageDown = false;
const output: string[] = [];
const sessions: Record<string, ort.InferenceSession> = {};
const models: Record<string, Uint8Array> = {};

const call = (request: HttpRequest) =>
  invoke(handler, {
    method: request.method,
    path: request.path,
    headers: Object.fromEntries(
      Object.entries(request.headers).filter((e): e is [string, string] => e[1] !== undefined),
    ),
    ...(request.body === undefined ? {} : { body: request.body }),
  });

const get = (path: string) => invoke(handler, { method: 'GET', path });

beforeAll(async () => {
  s3 = await startTestS3();
  tmp = await mkdtemp(join(tmpdir(), 'maas-predict-'));
  const registry = new Registry(s3.store);
  const { readFile } = await import('node:fs/promises');
  Object.assign(models, {
    identity: identityModel(),
    silero: new Uint8Array(await readFile(sileroLegacyPath())),
    single: singleInputModel(),
    arithmetic: arithmeticModel(),
  });
  for (const [name, bytes] of Object.entries(models)) {
    await registerVersion(registry, name, bytes);
    await setAliases(registry, name, { production: 1 });
    sessions[name] = await ort.InferenceSession.create(bytes);
  }
  // a canary: version 2 of `single` takes every unpinned request
  await registerVersion(registry, 'single', models.single ?? new Uint8Array());
  await setAliases(registry, 'single', {
    production: 1,
    candidate: { version: 2, weight: 1, bakeUntil: new Date(Date.now() + 3_600_000).toISOString() },
  });
  // registered but never requested before the storage tests at the end, with bytes of their own
  // (the runtime's disk cache is keyed by sha256: shared bytes would be served from it)
  await registerVersion(registry, 'cold', gatherModel());
  await setAliases(registry, 'cold', { production: 1 });
  await registerVersion(registry, 'tampered', identityModel(['FP32']));
  await setAliases(registry, 'tampered', { production: 1 });

  for (const [name, value] of Object.entries(s3Env(s3.s3))) vi.stubEnv(name, value);
  vi.stubEnv('MAAS_TMP_CACHE_DIR', tmp);
  vi.stubEnv('MAAS_INTRA_OP_THREADS', '1');
  // long enough that warm models never re-read aliases during the outage test
  vi.stubEnv('MAAS_ALIAS_TTL_MS', '600000');
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      output.push(args.map(String).join(' '));
    });
  }
  ({ handler } = await import('../../../functions/predict/handler.ts'));
});

afterAll(async () => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  for (const session of Object.values(sessions)) await session.release();
  if (storageDown) {
    s3.client.destroy();
    await rm(s3.directory, { recursive: true, force: true });
  } else await s3.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

const direct = async (
  name: string,
  inputs: readonly ClientTensor[],
  types: Record<string, ort.Tensor.Type>,
) => {
  const session = sessions[name];
  if (!session) throw new Error(`no session ${name}`);
  const feeds = Object.fromEntries(
    inputs.map((t) => [t.name, new ort.Tensor(types[t.datatype] ?? 'float32', t.data, t.shape)]),
  );
  const out = await session.run(feeds);
  return session.outputNames.map((n) => fromOrt(n, out[n] as ort.Tensor));
};

const identityInputs = (): ClientTensor[] =>
  DATATYPES.map((d, i): ClientTensor => {
    const n = 6;
    const data =
      d === 'BYTES'
        ? ['', 'ünïcode', '{"json": true}', '😀', 'x'.repeat(50), 'z']
        : d === 'BOOL'
          ? Uint8Array.of(1, 0, 1, 1, 0, 0)
          : d === 'INT64'
            ? BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 53n + 1n, 7n)
            : d === 'UINT64'
              ? BigUint64Array.of(2n ** 64n - 1n, 0n, 1n, 2n ** 53n + 1n, 5n, 9n)
              : d === 'FP32'
                ? Float32Array.of(Number.NaN, -0, 1e-45, 3.4e38, -1.5, i)
                : d === 'FP64'
                  ? Float64Array.of(Number.NEGATIVE_INFINITY, -0, 5e-324, Math.PI, -1e300, i)
                  : d === 'FP16'
                    ? Uint16Array.of(0x3c00, 0x8000, 0x7c00, 0x0001, 0x7bff, 0xc000)
                    : d === 'INT8'
                      ? Int8Array.of(-128, 127, 0, -1, 5, i)
                      : d === 'UINT8'
                        ? Uint8Array.of(255, 0, 1, 2, 3, i)
                        : d === 'INT16'
                          ? Int16Array.of(-32768, 32767, 0, -1, 5, i)
                          : d === 'UINT16'
                            ? Uint16Array.of(65535, 0, 1, 2, 3, i)
                            : d === 'INT32'
                              ? Int32Array.of(-(2 ** 31), 2 ** 31 - 1, 0, -1, 5, i)
                              : Uint32Array.of(2 ** 32 - 1, 0, 1, 2, 3, i);
    return { name: tensorName('x', d), datatype: d, shape: [n / 3, 3], data };
  });

describe('the predict handler over the runtime and the local S3', () => {
  it('serves every datatype in JSON equal to onnxruntime, through a payload 2.0 event', async () => {
    const inputs = identityInputs();
    const res = await call(
      binaryInferRequest('/v2/models/identity/infer', inputs, {
        asJson: (t) => t.datatype !== 'FP16',
      }),
    );
    expect(res.status, bodyText(res)).toBe(200);
    const { outputs } = readInferResponse(res);
    const expected = await direct('identity', inputs, ORT_TYPES);
    expect(outputs.map((o) => o.name)).toEqual(expected.map((e) => e.name));
    outputs.forEach((o, i) => {
      const e = expected[i];
      if (!e) return;
      if (e.datatype === 'FP16')
        expect(o.data).toEqual([1, -0, Number.POSITIVE_INFINITY, 2 ** -24, 65504, -2]);
      else expect(o.data, o.name).toEqual(e.data);
    });
  });

  it('serves binary in and out bit-identical to onnxruntime, bodies base64 in the event', async () => {
    const inputs = identityInputs();
    const res = await call(
      binaryInferRequest('/v2/models/identity/infer', inputs, {
        parameters: { binary_data_output: true },
      }),
    );
    expect(res.status, bodyText(res)).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const { outputs } = readInferResponse(res);
    const expected = await direct('identity', inputs, ORT_TYPES);
    expect(outputs.map((o) => bytesOf(o.data))).toEqual(expected.map((e) => bytesOf(e.data)));
  });

  it('runs Silero VAD (real third-party model) equal to onnxruntime in JSON and binary', async () => {
    const inputs: ClientTensor[] = [
      {
        name: 'input',
        datatype: 'FP32',
        shape: [1, 512],
        data: Float32Array.from({ length: 512 }, (_, i) => Math.sin(i / 5) * 0.4),
      },
      { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128).fill(0.01) },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
    ];
    const expected = await direct('silero', inputs, ORT_TYPES);
    const json = readInferResponse(
      await call(postJson('/v2/models/silero/infer', jsonInferBody(inputs))),
    );
    const binary = readInferResponse(
      await call(
        binaryInferRequest('/v2/models/silero/infer', inputs, {
          parameters: { binary_data_output: true },
        }),
      ),
    );
    expect(json.outputs.map((o) => [o.name, o.shape])).toEqual(
      expected.map((e) => [e.name, e.shape]),
    );
    expect(json.outputs.map((o) => o.data)).toEqual(expected.map((e) => e.data));
    expect(binary.outputs.map((o) => bytesOf(o.data))).toEqual(
      expected.map((e) => bytesOf(e.data)),
    );
  });

  it('routes unpinned requests by the aliases and says which version and variant answered', async () => {
    const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };
    const canary = await call(postJson('/v2/models/single/infer', body));
    expect([
      canary.status,
      canary.headers['x-maas-model-version'],
      canary.headers['x-maas-variant'],
    ]).toEqual([200, '2', 'candidate']);
    const pinned = await call(postJson('/v2/models/single/versions/1/infer', body));
    expect([pinned.headers['x-maas-model-version'], pinned.headers['x-maas-variant']]).toEqual([
      '1',
      'pinned',
    ]);
    const production = await call(
      postJson(
        '/v2/models/arithmetic/infer',
        jsonInferBody([
          { name: 'a', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(2) },
          { name: 'b', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(3) },
          { name: 'c', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(-1) },
          { name: 'scale', datatype: 'FP64', shape: [], data: Float64Array.of(0.5) },
        ]),
      ),
    );
    expect(production.headers['x-maas-variant']).toBe('production');
    expect(JSON.parse(bodyText(production))).toMatchObject({
      model_name: 'arithmetic',
      model_version: '1',
      outputs: [
        { name: 'sum', data: [5] },
        { name: 'rounded', data: [5] },
        { name: 'scaled', data: [2.5] },
        { name: 'positive', data: [true] },
      ],
    });
  });

  it('answers V1 :predict and the metadata routes from the registry', async () => {
    const predicted = await call(
      postJson('/v1/models/single:predict', { instances: [[1, 1, 1, 1]] }),
    );
    expect(JSON.parse(bodyText(predicted))).toEqual({
      predictions: [{ y: [2, 2, 2, 2], total: 4 }],
    });
    expect(JSON.parse(bodyText(await get('/v2/models/single')))).toEqual({
      name: 'single',
      versions: ['1', '2'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [-1, 4] },
        { name: 'total', datatype: 'FP32', shape: [-1] },
      ],
    });
    const list = JSON.parse(bodyText(await get('/v2/models'))) as { models: { name: string }[] };
    expect(list.models).toContainEqual({
      name: 'single',
      production: 1,
      candidate: { version: 2, weight: 1 },
    });
    expect((await get('/v2/health/ready')).status).toBe(200);
    expect(JSON.parse(bodyText(await get('/v2')))).toMatchObject({
      extensions: ['binary_tensor_data', 'model_repository'],
    });
  });

  it('refuses client mistakes with a 4xx JSON error, never a 5xx', async () => {
    const cases: [HttpRequest, number][] = [
      [postJson('/v2/models/nope/infer', '{}'), 404],
      [postJson('/v2/models/single/versions/7/infer', '{}'), 404],
      [postJson('/v2/models/single/infer', '{"inputs": '), 400],
      [
        postJson('/v2/models/single/infer', {
          inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 4], data: [1, 2, 3, 4] }],
        }),
        400,
      ],
      [
        { ...postJson('/v2/models/single/infer', '{}'), headers: { 'content-type': 'text/csv' } },
        415,
      ],
    ];
    for (const [request, status] of cases) {
      const res = await call(request);
      expect(res.status, bodyText(res)).toBe(status);
      expect(JSON.parse(bodyText(res))).toEqual({ error: expect.any(String) });
    }
  });

  it('logs each request with its request id, model, version, variant and latency', async () => {
    const res = await call(
      postJson('/v2/models/single/versions/1/infer', {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [0, 0, 0, 0] }],
      }),
    );
    const line = output
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return undefined;
        }
      })
      .find((l) => l?.requestId === res.requestId && l.message === 'request');
    expect(line).toMatchObject({
      level: 'INFO',
      service: 'maas-predict',
      function_request_id: `lambda-${res.requestId}`,
      model: 'single',
      version: 1,
      variant: 'pinned',
      status: 200,
      latencyMs: expect.any(Number),
      inferenceMs: expect.any(Number),
    });
  });

  it('emits EMF metrics per model under Model+Variant, and Model+Version for routed requests only', () => {
    const records = output.flatMap(parseEmfLine).filter((r) => r.dimensions.Model === 'single');
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) {
      expect(r.namespace).toBe('Maas');
      // a request pinned by version never reaches the guard's series
      expect(r.dimensionSets).toEqual(
        r.dimensions.Variant === 'pinned'
          ? [['Model', 'Variant']]
          : [
              ['Model', 'Variant'],
              ['Model', 'Version'],
            ],
      );
    }
    expect(records.some((r) => r.dimensions.Variant === 'pinned')).toBe(true);
    // the guard's Started record, written before the run, shares the answer's timestamp
    const started = records.filter((r) => r.values.Started?.[0] === 1);
    expect(started.length).toBeGreaterThan(0);
    for (const s of started) {
      expect(
        records.some(
          (r) =>
            r.values.Requests?.[0] === 1 &&
            r.timestamp === s.timestamp &&
            r.dimensions.Version === s.dimensions.Version,
        ),
      ).toBe(true);
    }
    expect(
      records.some(
        (r) =>
          r.dimensions.Variant === 'candidate' &&
          r.dimensions.Version === '2' &&
          r.values.Requests?.[0] === 1,
      ),
    ).toBe(true);
    expect(output.flatMap(parseEmfLine).some((r) => r.values.ModelLoadLatency !== undefined)).toBe(
      true,
    );
  });
});

describe('storage failures during a cold load', () => {
  const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

  it('answers 503 with Retry-After when the stored bytes fail their sha256 check', async () => {
    await overwrite(s3.store, keys.variant('tampered', 1, 'fp32'), arithmeticModel());
    const res = await call(
      postJson('/v2/models/tampered/infer', {
        inputs: [{ name: 'x_fp32', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }],
      }),
    );
    expect(res.status, bodyText(res)).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(bodyText(res))).toEqual({ error: expect.stringContaining('sha256') });
  });

  it('answers 503 with Retry-After for a cold model while storage is down, and keeps serving warm ones', async () => {
    expect((await call(postJson('/v2/models/single/versions/1/infer', body))).status).toBe(200);
    await s3.s3.close();
    storageDown = true;
    const cold = await call(
      postJson('/v2/models/cold/infer', {
        inputs: [{ name: 'ids', datatype: 'INT64', shape: [1], data: [0] }],
      }),
    );
    expect(cold.status, bodyText(cold)).toBe(503);
    expect(Number(cold.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(bodyText(cold))).toEqual({
      error: expect.stringContaining('model storage is unreachable'),
    });
    const warm = await call(postJson('/v2/models/single/versions/1/infer', body));
    expect(warm.status, bodyText(warm)).toBe(200);
  });
});
