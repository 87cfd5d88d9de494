import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalApi, startLocalApi } from '../../local/http/index.ts';
import { ensureExampleModels } from '../../models/generate.ts';
import { keys, Registry } from '../../src/registry/index.ts';
import { s3Env, startTestS3, type TestS3 } from '../support/local-s3.ts';
import { overwrite, registerVersion, setAliases } from '../support/registry.ts';

/**
 * The requests `tritonclient.http` (InferenceServerClient, geventhttpclient underneath) sends,
 * replayed byte for byte: its headers (no Content-Type; Content-Encoding and Accept-Encoding from
 * request_compression_algorithm; Inference-Header-Content-Length only with binary data), its
 * bodies (an empty POST for the repository index; the whole infer body compressed).
 */
const CLIENT_HEADERS = { 'user-agent': 'python/gevent-http-client-2.3.1' };

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const send = (
  api: LocalApi,
  method: 'GET' | 'POST',
  path: string,
  headers: Record<string, string> = {},
  body: Uint8Array = new Uint8Array(),
): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const req = request(
      `${api.url}/${path}`,
      {
        method,
        headers: {
          ...CLIENT_HEADERS,
          ...(method === 'POST' ? { 'content-length': String(body.byteLength) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(method === 'POST' ? body : undefined);
  });

const json = (answer: Answer): unknown => JSON.parse(answer.body.toString('utf8'));

/** `InferInput('input', [1, 4], 'FP32').set_data_from_numpy(x, binary_data=...)`, as the client encodes it */
const irisRequest = (binary: boolean): { body: Buffer; jsonSize?: number } => {
  const values = [5.1, 3.5, 1.4, 0.2];
  if (!binary) {
    const body = JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: values }],
    });
    return { body: Buffer.from(body) };
  }
  const raw = Buffer.from(new Float32Array(values).buffer);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: 'input',
          shape: [1, 4],
          datatype: 'FP32',
          parameters: { binary_data_size: raw.byteLength },
        },
      ],
      outputs: [{ name: 'label', parameters: { binary_data: false } }],
    }),
  );
  return { body: Buffer.concat([header, raw]), jsonSize: header.byteLength };
};

describe('tritonclient.http against the predict API', () => {
  let t: TestS3;
  let api: LocalApi;

  beforeAll(async () => {
    t = await startTestS3();
    const registry = new Registry(t.store);
    const { iris } = await ensureExampleModels();
    await registerVersion(registry, 'iris', new Uint8Array(await readFile(iris.path)));
    await registerVersion(registry, 'iris', new Uint8Array(await readFile(iris.path)));
    await setAliases(registry, 'iris', {
      production: 1,
      candidate: { version: 2, weight: 0.25, bakeUntil: '2030-01-01T00:00:00.000Z' },
    });
    api = await startLocalApi({ port: 0, workers: 1, env: s3Env(t.s3), onOutput: () => {} });
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await t?.cleanup();
  });

  it('advertises the model repository extension, and get_model_repository_index answers', async () => {
    const server = json(await send(api, 'GET', 'v2')) as { extensions: string[] };
    expect(server.extensions).toContain('model_repository');
    const index = await send(api, 'POST', 'v2/repository/index');
    expect(index.status).toBe(200);
    expect(json(index)).toEqual([
      { name: 'iris', version: '1', state: 'READY', reason: 'production' },
      {
        name: 'iris',
        version: '2',
        state: 'READY',
        reason: 'candidate, 25 % of unpinned requests',
      },
    ]);
    const ready = await send(
      api,
      'POST',
      'v2/repository/index',
      {},
      Buffer.from('{"ready": true}'),
    );
    expect((json(ready) as unknown[]).length).toBe(2);
  });

  it('answers get_model_config with a Triton-style config', async () => {
    const config = await send(api, 'GET', 'v2/models/iris/config');
    expect(config.status).toBe(200);
    expect(json(config)).toEqual({
      name: 'iris',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 0,
      version_policy: { specific: { versions: [1, 2] } },
      input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [-1, 4] }],
      output: [
        { name: 'probabilities', data_type: 'TYPE_FP32', dims: [-1, 3] },
        { name: 'label', data_type: 'TYPE_INT64', dims: [-1] },
      ],
    });
    const pinned = await send(api, 'GET', 'v2/models/iris/versions/2/config');
    expect(pinned.status).toBe(200);
    expect(json(await send(api, 'GET', 'v2/models/nope/config'))).toMatchObject({
      error: expect.stringContaining('nope'),
    });
  });

  it.each([
    ['gzip', 'JSON', false],
    ['gzip', 'binary', true],
    ['deflate', 'JSON', false],
    ['deflate', 'binary', true],
  ] as const)('infers on a %s-compressed %s request', async (algorithm, _kind, binary) => {
    const { body, jsonSize } = irisRequest(binary);
    const compressed = algorithm === 'gzip' ? gzipSync(body) : deflateSync(body);
    const answer = await send(
      api,
      'POST',
      'v2/models/iris/versions/1/infer',
      {
        'content-encoding': algorithm,
        'accept-encoding': algorithm,
        ...(jsonSize === undefined ? {} : { 'inference-header-content-length': String(jsonSize) }),
      },
      compressed,
    );
    expect(answer.status).toBe(200);
    const result = JSON.parse(
      answer.body
        .subarray(
          0,
          Number(answer.headers['inference-header-content-length'] ?? answer.body.byteLength),
        )
        .toString('utf8'),
    ) as { outputs: { name: string; data?: number[] }[] };
    expect(result.outputs.find((o) => o.name === 'label')?.data).toEqual([0]);
  });

  it('refuses a gzip body that inflates past the body cap with 413, without inflating it all', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.byteLength).toBeLessThan(1024 * 1024);
    const answer = await send(
      api,
      'POST',
      'v2/models/iris/infer',
      { 'content-encoding': 'gzip' },
      bomb,
    );
    expect(answer.status).toBe(413);
    expect(json(answer)).toMatchObject({
      error: expect.stringContaining('decompresses to more than the cap'),
    });
  });

  it('refuses an encoding it cannot read with 415, and a corrupt one with 400', async () => {
    const { body } = irisRequest(false);
    const br = await send(api, 'POST', 'v2/models/iris/infer', { 'content-encoding': 'br' }, body);
    expect(br.status).toBe(415);
    expect(json(br)).toMatchObject({ error: expect.stringContaining('gzip or deflate') });
    const corrupt = await send(
      api,
      'POST',
      'v2/models/iris/infer',
      { 'content-encoding': 'gzip' },
      body,
    );
    expect(corrupt.status).toBe(400);
  });

  it('answers load_model and unload_model that the repository is managed through S3', async () => {
    const load = await send(api, 'POST', 'v2/repository/models/iris/load', {}, Buffer.from('{}'));
    expect(load.status).toBe(405);
    expect(json(load)).toMatchObject({
      error: expect.stringContaining('maas push model.onnx --model iris'),
    });
    const unload = await send(
      api,
      'POST',
      'v2/repository/models/iris/unload',
      {},
      Buffer.from(JSON.stringify({ parameters: { unload_dependents: false } })),
    );
    expect(unload.status).toBe(405);
    expect(json(unload)).toMatchObject({ error: expect.stringContaining('read-only') });
  });
});

describe('the repository index and model list over a registry with a broken record', () => {
  let t: TestS3;
  let api: LocalApi;

  beforeAll(async () => {
    t = await startTestS3();
    const registry = new Registry(t.store);
    const { iris } = await ensureExampleModels();
    const bytes = new Uint8Array(await readFile(iris.path));
    await registerVersion(registry, 'iris', bytes);
    await setAliases(registry, 'iris', { production: 1 });
    await registerVersion(registry, 'broken', bytes);
    await setAliases(registry, 'broken', { production: 1 });
    // what an operator with write access could leave: a manifest that is not one, and a folder
    // no model name could make
    await overwrite(t.store, keys.manifest('broken', 1), '{"not": "a manifest"');
    await t.store.put('registry/Not A Model/aliases.json', '{}', { ifNoneMatch: '*' });
    api = await startLocalApi({ port: 0, workers: 1, env: s3Env(t.s3), onOutput: () => {} });
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await t?.cleanup();
  });

  it('lists every other model, and the broken one as UNAVAILABLE with the key to fix', async () => {
    const index = await send(api, 'POST', 'v2/repository/index');
    expect(index.status).toBe(200);
    const entries = json(index) as { name: string; state: string; reason: string }[];
    expect(entries.find((e) => e.name === 'iris')).toMatchObject({ version: '1', state: 'READY' });
    const broken = entries.find((e) => e.name === 'broken');
    expect(broken).toMatchObject({ state: 'UNAVAILABLE' });
    expect(broken?.reason).toContain(keys.manifest('broken', 1));
    expect(entries.map((e) => e.name)).not.toContain('Not A Model');
    const models = await send(api, 'GET', 'v2/models');
    expect(models.status).toBe(200);
    expect((json(models) as { models: { name: string }[] }).models.map((m) => m.name)).toEqual([
      'broken',
      'iris',
    ]);
  });
});
