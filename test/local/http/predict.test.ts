import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalApi, startLocalApi } from '../../../local/http/index.ts';
import { parseEmfLine } from '../../../src/metrics/index.ts';
import type { HttpRequest, HttpResponse } from '../../../src/protocol/index.ts';
import { Registry } from '../../../src/registry/index.ts';
import {
  binaryInferRequest,
  bodyText,
  bytesOf,
  type ClientTensor,
  fromOrt,
  httpRequest,
  jsonInferBody,
  postJson,
  readInferResponse,
} from '../../support/client.ts';
import { sileroV5Path, singleInputModel } from '../../support/conformance-models.ts';
import { s3Env, startTestS3, type TestS3 } from '../../support/local-s3.ts';
import { registerVersion, setAliases } from '../../support/registry.ts';

let s3: TestS3;
let tmp: string;
let api: LocalApi;
let silero: ort.InferenceSession;
const lines: string[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
  tmp = await mkdtemp(join(tmpdir(), 'maas-http-'));
  const registry = new Registry(s3.store);
  const bytes = new Uint8Array(await readFile(sileroV5Path()));
  silero = await ort.InferenceSession.create(bytes);
  await registerVersion(registry, 'vad', bytes);
  await setAliases(registry, 'vad', { production: 1 });
  await registerVersion(registry, 'double', singleInputModel());
  await setAliases(registry, 'double', { production: 1 });
  api = await startLocalApi({
    port: 0,
    workers: 1,
    env: {
      ...s3Env(s3.s3),
      MAAS_TMP_CACHE_DIR: tmp,
      POWERTOOLS_METRICS_DISABLED: 'false',
      POWERTOOLS_DEV: 'false',
    },
    onOutput: (line) => lines.push(line),
  });
});

afterAll(async () => {
  await api?.close();
  await silero?.release();
  await s3?.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

/** Sends a protocol request over real HTTP to the local API and reads the answer back. */
const send = async (request: HttpRequest): Promise<HttpResponse> => {
  const headers = Object.fromEntries(
    Object.entries(request.headers).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const res = await fetch(`${api.url}${request.path}`, {
    method: request.method,
    headers,
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  const body = new Uint8Array(await res.arrayBuffer());
  const type = res.headers.get('content-type') ?? '';
  return {
    status: res.status,
    headers: Object.fromEntries(res.headers),
    body: type === 'application/json' ? new TextDecoder().decode(body) : body,
  };
};

const inputs = (): ClientTensor[] => [
  {
    name: 'input',
    datatype: 'FP32',
    shape: [2, 512],
    data: Float32Array.from({ length: 1024 }, (_, i) => Math.sin(i / 9) * 0.5),
  },
  {
    name: 'state',
    datatype: 'FP32',
    shape: [2, 2, 128],
    data: Float32Array.from({ length: 512 }, (_, i) => (i % 7) / 70),
  },
  { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
];

const direct = async (tensors: ClientTensor[]): Promise<ClientTensor[]> => {
  const out = await silero.run({
    input: new ort.Tensor('float32', tensors[0]?.data as Float32Array, [2, 512]),
    state: new ort.Tensor('float32', tensors[1]?.data as Float32Array, [2, 2, 128]),
    sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
  });
  return silero.outputNames.map((n) => fromOrt(n, out[n] as ort.Tensor));
};

describe('the local HTTP API serving the predict handler', () => {
  it('returns Silero VAD v5 outputs over HTTP equal to onnxruntime, in JSON', async () => {
    const res = await send(postJson('/v2/models/vad/infer', jsonInferBody(inputs())));
    expect(res.status, bodyText(res)).toBe(200);
    expect(res.headers).toMatchObject({
      'x-maas-model-version': '1',
      'x-maas-variant': 'production',
    });
    const expected = await direct(inputs());
    const { outputs } = readInferResponse(res);
    expect(outputs.map((o) => [o.name, o.shape])).toEqual(expected.map((e) => [e.name, e.shape]));
    expect(outputs.map((o) => o.data)).toEqual(expected.map((e) => e.data));
  });

  it('returns them bit for bit with the binary tensor data extension', async () => {
    const res = await send(
      binaryInferRequest('/v2/models/vad/infer', inputs(), {
        parameters: { binary_data_output: true },
      }),
    );
    expect(res.status, bodyText(res)).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const expected = await direct(inputs());
    expect(readInferResponse(res).outputs.map((o) => bytesOf(o.data))).toEqual(
      expected.map((e) => bytesOf(e.data)),
    );
  });

  it('answers V1 :predict, metadata and client mistakes over HTTP', async () => {
    const predicted = await send(
      postJson('/v1/models/double:predict', { instances: [[1, 2, 3, 4]] }),
    );
    expect(JSON.parse(bodyText(predicted))).toEqual({
      predictions: [{ y: [2, 4, 6, 8], total: 10 }],
    });
    const metadata = JSON.parse(bodyText(await send(httpRequest('GET', '/v2/models/vad'))));
    expect(metadata).toMatchObject({
      name: 'vad',
      platform: 'onnx_onnxv1',
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [-1, -1] },
        { name: 'state', datatype: 'FP32', shape: [2, -1, 128] },
        { name: 'sr', datatype: 'INT64', shape: [] },
      ],
    });
    const wrong = await send(
      postJson('/v2/models/vad/infer', jsonInferBody([inputs()[0] as ClientTensor])),
    );
    expect(wrong.status).toBe(400);
    expect(JSON.parse(bodyText(wrong))).toEqual({
      error: 'missing input(s): state, sr; this model takes 3: input, state, sr',
    });
  });

  it('writes EMF metric lines the local alarm evaluator can read', () => {
    const records = lines.flatMap(parseEmfLine).filter((r) => r.dimensions.Model === 'vad');
    expect(records.length).toBeGreaterThanOrEqual(3);
    expect(records.map((r) => r.values.ClientErrors?.[0])).toContain(1);
    expect(
      records.every((r) => r.dimensions.Variant === 'production' && r.dimensions.Version === '1'),
    ).toBe(true);
  });
});
