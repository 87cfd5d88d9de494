import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MaasError } from '../../src/errors/index.ts';
import { MemoryMetricsSink } from '../../src/metrics/index.ts';
import { RETRY_AFTER_SECONDS } from '../../src/protocol/index.ts';
import type { LoadedModel, ModelProvider } from '../../src/runtime/index.ts';
import { createPredictApp, type RequestRecord } from '../../src/serve/index.ts';
import { StorageUnavailableError } from '../../src/storage/index.ts';
import {
  binaryInferRequest,
  bodyText,
  httpRequest,
  postJson,
  readInferResponse,
} from '../support/client.ts';
import {
  arithmeticModel,
  gatherModel,
  SessionProvider,
  singleInputModel,
} from '../support/conformance-models.ts';

let provider: SessionProvider;

beforeAll(async () => {
  provider = await SessionProvider.create({
    arithmetic: arithmeticModel(),
    single: singleInputModel(),
    gather: gatherModel(),
  });
});

afterAll(() => provider.release());

/** The metric documents written once requests answered (not their `Started` records). */
const answered = (metrics: MemoryMetricsSink) =>
  metrics.emitted
    .filter((e) => e.values.Started === undefined && e.values.Requests !== undefined)
    .map((e) => e.values);

const json = (body: string | Uint8Array): unknown =>
  JSON.parse(typeof body === 'string' ? body : new TextDecoder().decode(body));

const get = (path: string) => httpRequest('GET', path);

const singleRequest = (values: number[][]) =>
  postJson('/v2/models/single/infer', {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [values.length, 4], data: values }],
  });

describe('routes of the HTTP contract', () => {
  it('answers liveness and readiness', async () => {
    const app = createPredictApp({ provider });
    expect(json((await app(get('/v2/health/live'))).body)).toEqual({ live: true });
    const ready = await app(get('/v2/health/ready'));
    expect([ready.status, json(ready.body)]).toEqual([200, { ready: true }]);
  });

  it('describes the server with its extensions', async () => {
    const res = await createPredictApp({ provider })(get('/v2'));
    expect(json(res.body)).toMatchObject({
      name: 'onnx-maas',
      version: expect.any(String),
      extensions: ['binary_tensor_data', 'model_repository'],
    });
  });

  it('lists the models with their production version', async () => {
    const res = await createPredictApp({ provider })(get('/v2/models'));
    expect(json(res.body)).toEqual({
      models: [
        { name: 'arithmetic', production: 1 },
        { name: 'single', production: 1 },
        { name: 'gather', production: 1 },
      ],
    });
  });

  it('returns model and version metadata with the signature, dynamic dims as -1', async () => {
    const app = createPredictApp({ provider });
    const expected = {
      name: 'single',
      versions: ['1'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [-1, 4] },
        { name: 'total', datatype: 'FP32', shape: [-1] },
      ],
    };
    expect(json((await app(get('/v2/models/single'))).body)).toEqual(expected);
    expect(json((await app(get('/v2/models/single/versions/1/'))).body)).toEqual(expected);
  });

  it('reports a model and a version ready once it can serve', async () => {
    const app = createPredictApp({ provider });
    const res = await app(get('/v2/models/single/ready'));
    expect([res.status, json(res.body)]).toEqual([
      200,
      { name: 'single', version: '1', ready: true },
    ]);
    expect((await app(get('/v2/models/single/versions/1/ready'))).status).toBe(200);
    expect((await app(get('/v2/models/single/versions/2/ready'))).status).toBe(404);
  });

  it('answers 405 with Allow for a known path and a wrong verb', async () => {
    const app = createPredictApp({ provider });
    const cases = [
      ['POST', '/v2/models', 'GET'],
      ['GET', '/v2/models/single/infer', 'POST'],
      ['PUT', '/v2/models/single/versions/1/infer', 'POST'],
      ['GET', '/v1/models/single:predict', 'POST'],
      ['DELETE', '/v2/health/live', 'GET'],
    ] as const;
    for (const [method, path, allow] of cases) {
      const res = await app(httpRequest(method, path));
      expect([res.status, res.headers.allow], `${method} ${path}`).toEqual([405, allow]);
      expect(json(res.body)).toEqual({ error: expect.stringContaining(`use ${allow}`) });
    }
  });

  it('answers 404 JSON for paths outside the contract', async () => {
    const app = createPredictApp({ provider });
    for (const path of [
      '/',
      '/v3',
      '/v2/models/single/explainer',
      '/v2/models/single/versions',
      '/v1/models/single',
      '/v2/models/a/b/c/d/e/f',
    ]) {
      const res = await app(get(path));
      expect(res.status, path).toBe(404);
      expect(json(res.body)).toEqual({ error: expect.stringContaining('no route') });
    }
  });
});

describe('failures the platform owns', () => {
  const failing = (err: unknown): ModelProvider => ({
    listModels: () => Promise.reject(err),
    describe: () => Promise.reject(err),
    acquire: () => Promise.reject(err),
  });

  it('maps unreachable storage to 503 with Retry-After and no internals', async () => {
    const err = new StorageUnavailableError(
      'connect ECONNREFUSED 10.0.0.7:9000 bucket secret-bucket',
    );
    const app = createPredictApp({ provider: failing(err) });
    for (const res of [
      await app(singleRequest([[1, 2, 3, 4]])),
      await app(get('/v2/health/ready')),
    ]) {
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe(String(RETRY_AFTER_SECONDS.unavailable));
      expect(bodyText(res)).not.toMatch(/ECONNREFUSED|secret-bucket/);
      expect(json(res.body)).toEqual({ error: expect.stringContaining('storage is unreachable') });
    }
  });

  it('honours the Retry-After a load failure carries', async () => {
    const err = new MaasError('IntegrityError', 'sha256 mismatch', {
      details: { model: 'single', version: 3, retryAfterSeconds: 2 },
    });
    const res = await createPredictApp({ provider: failing(err) })(get('/v2/models/single/ready'));
    expect([res.status, res.headers['retry-after']]).toEqual([503, '2']);
    expect(json(res.body)).toEqual({
      error: expect.stringContaining('model single version 3 failed their sha256 check'),
    });
  });

  it('gives the specific reason a generic load failure wraps', async () => {
    const storage = new StorageUnavailableError('socket hang up at 10.0.0.7');
    const err = new MaasError('ModelUnavailable', `store down: ${storage.message}`, {
      cause: storage,
      details: { model: 'single', version: 2, retryAfterSeconds: 3 },
    });
    const res = await createPredictApp({ provider: failing(err) })(get('/v2/models/single/ready'));
    expect([res.status, res.headers['retry-after']]).toEqual([503, '3']);
    expect(json(res.body)).toEqual({
      error: 'model storage is unreachable while loading model single version 2; retry after 3 s',
    });
  });

  it('maps shed load to 429 with Retry-After', async () => {
    const res = await createPredictApp({ provider: failing(new MaasError('Overloaded', 'busy')) })(
      singleRequest([[1, 2, 3, 4]]),
    );
    expect([res.status, res.headers['retry-after']]).toEqual([429, '1']);
  });

  it('turns a bug into a generic 500 that names only the request id', async () => {
    const app = createPredictApp({
      provider: failing(new TypeError('cannot read x of undefined at /var/task/index.js')),
    });
    const request = singleRequest([[1, 2, 3, 4]]);
    const res = await app(request);
    expect(res.status).toBe(500);
    expect(json(res.body)).toEqual({
      error: `internal error (request id ${request.requestId}); the operators have the details`,
    });
  });

  it('answers 400, not 500, when the model refuses valid-looking values at run time, and counts it against the model version', async () => {
    const metrics = new MemoryMetricsSink();
    const app = createPredictApp({ provider, metrics });
    const res = await app(
      postJson('/v2/models/gather/infer', {
        inputs: [{ name: 'ids', datatype: 'INT64', shape: [2], data: [1, 7] }],
      }),
    );
    expect(res.status).toBe(400);
    expect(json(res.body)).toEqual({
      error: expect.stringContaining('model gather v1 could not run on the inputs "ids" INT64 [2]'),
    });
    const ok = await app(
      postJson('/v2/models/gather/infer', {
        inputs: [{ name: 'ids', datatype: 'INT64', shape: [2], data: [2, 0] }],
      }),
    );
    expect(readInferResponse(ok).outputs[0]?.data).toEqual(Float32Array.of(5, 6, 1, 2));
    const [failed, served] = answered(metrics);
    expect(failed).toMatchObject({ ModelErrors: 1, ClientErrors: 0 });
    expect(served).toMatchObject({ ModelErrors: 0, ClientErrors: 0 });
  });
});

describe('metrics and request records', () => {
  it('emits per-model metrics under Model, Variant and Version, ColdStart once', async () => {
    const metrics = new MemoryMetricsSink();
    const app = createPredictApp({ provider, metrics });
    const before = Date.now();
    await app(singleRequest([[1, 2, 3, 4]]));
    await app(postJson('/v2/models/single/versions/1/infer', { inputs: [] }));
    await app(get('/v2/models'));
    const stamp = metrics.emitted[0]?.timestamp ?? 0;
    expect(stamp).toBeGreaterThanOrEqual(before);
    expect(metrics.emitted).toEqual(
      [
        // written before the model runs, stamped like the answer with the request's start
        {
          values: { Started: 1 },
          dimensions: { model: 'single', version: 1, variant: 'production' },
          timestamp: stamp,
        },
        {
          values: {
            ColdStart: 1,
            Requests: 1,
            Latency: expect.any(Number),
            InferenceLatency: expect.any(Number),
            ModelErrors: 0,
            ClientErrors: 0,
            NonFiniteOutputs: 0,
          },
          dimensions: { model: 'single', version: 1, variant: 'production' },
          timestamp: stamp,
        },
        // pinned: no Started (the guard's series is for routed requests only)
        {
          values: { Requests: 1, Latency: expect.any(Number), ModelErrors: 0, ClientErrors: 1 },
          dimensions: { model: 'single', version: 1, variant: 'pinned' },
          timestamp: expect.any(Number),
        },
        { values: { ColdStart: 0 }, timestamp: expect.any(Number) },
      ].slice(0, 3),
    );
  });

  it('counts NaN and Infinity in the outputs returned', async () => {
    const metrics = new MemoryMetricsSink();
    const app = createPredictApp({ provider, metrics });
    const res = await app(
      postJson('/v2/models/single/infer', {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: ['NaN', 1, 'Infinity', 2] }],
      }),
    );
    expect(json(res.body)).toMatchObject({
      outputs: [
        { name: 'y', data: ['NaN', 2, 'Infinity', 4] },
        { name: 'total', data: ['NaN'] },
      ],
    });
    expect(answered(metrics)[0]?.NonFiniteOutputs).toBe(3);
  });

  it('counts a 404 for an unknown model without inventing a Model dimension', async () => {
    const metrics = new MemoryMetricsSink();
    const app = createPredictApp({ provider, metrics });
    await app(get('/v2/health/live'));
    await app(postJson('/v2/models/nope/infer', { inputs: [] }));
    expect(metrics.emitted).toEqual([
      { values: { ColdStart: 1 }, timestamp: expect.any(Number) },
      {
        values: { Requests: 1, Latency: expect.any(Number), ModelErrors: 0, ClientErrors: 1 },
        timestamp: expect.any(Number),
      },
    ]);
  });

  it('attributes a load failure to the version and variant the error names', async () => {
    const metrics = new MemoryMetricsSink();
    const err = new MaasError('ModelUnavailable', 'down', {
      details: { model: 'single', version: 4, variant: 'candidate' },
    });
    const app = createPredictApp({
      provider: {
        ...provider,
        acquire: () => Promise.reject(err),
        listModels: () => provider.listModels(),
        describe: (m, v) => provider.describe(m, v),
      },
      metrics,
    });
    await app(singleRequest([[1, 2, 3, 4]]));
    expect(metrics.emitted[0]).toMatchObject({
      values: { ModelErrors: 1, ClientErrors: 0 },
      dimensions: { model: 'single', version: 4, variant: 'candidate' },
    });
  });

  it('reports cold-load latency when the runtime says the model was loaded for this request', async () => {
    const metrics = new MemoryMetricsSink();
    const cold: ModelProvider = {
      listModels: () => provider.listModels(),
      describe: (m, v) => provider.describe(m, v),
      acquire: async (m, v): Promise<LoadedModel> => ({
        ...(await provider.acquire(m, v)),
        load: { totalMs: 42 },
      }),
    };
    await createPredictApp({ provider: cold, metrics })(singleRequest([[1, 2, 3, 4]]));
    expect(answered(metrics)[0]?.ModelLoadLatency).toBe(42);
  });

  it('leaves the cold load out of Latency: cold loads alone never breach the latency rules', async () => {
    const metrics = new MemoryMetricsSink();
    const cold: ModelProvider = {
      listModels: () => provider.listModels(),
      describe: (m, v) => provider.describe(m, v),
      acquire: async (m, v): Promise<LoadedModel> => {
        await sleep(300);
        return { ...(await provider.acquire(m, v)), load: { totalMs: 300 } };
      },
    };
    await createPredictApp({ provider: cold, metrics })(singleRequest([[1, 2, 3, 4]]));
    const [values] = answered(metrics);
    expect(values?.ModelLoadLatency).toBe(300);
    expect(values?.Latency).toBeLessThan(250);
  });

  it('re-runs a failure of production in its watch window on the previous version, and says which failed where', async () => {
    const metrics = new MemoryMetricsSink();
    const promotion = { at: new Date().toISOString(), previous: 1 };
    const watched = (previousAnswers: boolean): ModelProvider => ({
      listModels: () => provider.listModels(),
      describe: (m, v) => provider.describe(m, v),
      acquire: async (m, v): Promise<LoadedModel> => {
        const loaded = await provider.acquire(m, v);
        if (v === undefined) return { ...loaded, version: 2, promotion };
        return previousAnswers ? { ...loaded, run: async () => ({}) } : loaded;
      },
    });
    const shadow = { share: 0.1, burst: 5, watchWindowMs: 60_000 };
    const attack = postJson('/v2/models/gather/infer', {
      inputs: [{ name: 'ids', datatype: 'INT64', shape: [2], data: [1, 7] }],
    });
    // identical bytes before and after the promotion: the input fails on both
    expect(
      (await createPredictApp({ provider: watched(false), metrics, shadow })(attack)).status,
    ).toBe(400);
    // the previous version answers it: a regression of the new one
    await createPredictApp({ provider: watched(true), metrics, shadow })(attack);
    const [everywhere, regression] = answered(metrics);
    expect(everywhere).toMatchObject({ ModelErrors: 1, ShadowChecks: 1, ShadowRegressions: 0 });
    expect(regression).toMatchObject({ ModelErrors: 1, ShadowChecks: 1, ShadowRegressions: 1 });
    expect(regression?.ShadowLatency).toEqual(expect.any(Number));
  });

  it('bounds the shadow to its share of routed requests, however many fail', async () => {
    const metrics = new MemoryMetricsSink();
    const promotion = { at: new Date().toISOString(), previous: 1 };
    const app = createPredictApp({
      provider: {
        listModels: () => provider.listModels(),
        describe: (m, v) => provider.describe(m, v),
        acquire: async (m, v) => ({
          ...(await provider.acquire(m, v)),
          ...(v === undefined ? { version: 2, promotion } : {}),
        }),
      },
      metrics,
      shadow: { share: 0.1, burst: 5, watchWindowMs: 60_000 },
    });
    for (let i = 0; i < 100; i++) {
      await app(
        postJson('/v2/models/gather/infer', {
          inputs: [{ name: 'ids', datatype: 'INT64', shape: [2], data: [1, 7] }],
        }),
      );
    }
    const checks = answered(metrics).filter((v) => v.ShadowChecks === 1).length;
    // 5 at once, then one per 10 routed requests
    expect(checks).toBeGreaterThanOrEqual(13);
    expect(checks).toBeLessThanOrEqual(15);
  });

  it('hands every request to onRequest with its model, version, variant and latency', async () => {
    const records: RequestRecord[] = [];
    const app = createPredictApp({ provider, onRequest: (r) => records.push(r) });
    const request = binaryInferRequest('/v2/models/single/infer', [
      { name: 'x', datatype: 'FP32', shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) },
    ]);
    await app(request);
    await app(postJson('/v2/models/single/infer', '{'));
    expect(records).toEqual([
      {
        requestId: request.requestId,
        method: 'POST',
        path: '/v2/models/single/infer',
        route: 'model.infer',
        status: 200,
        latencyMs: expect.any(Number),
        model: 'single',
        version: 1,
        variant: 'production',
        served: 'fp32',
        inferenceMs: expect.any(Number),
        nonFiniteOutputs: 0,
      },
      expect.objectContaining({ status: 400, errorCode: 'InvalidRequest', model: 'single' }),
    ]);
    expect(bodyText(await app(get('/v2')))).toContain('binary_tensor_data');
  });
});
