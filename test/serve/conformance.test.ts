import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATATYPES, type Datatype } from '../../src/onnx/index.ts';
import { halfToNumber, type TensorData } from '../../src/protocol/index.ts';
import { ORT_TYPES } from '../../src/runtime/index.ts';
import { createPredictApp, type PredictApp } from '../../src/serve/index.ts';
import { mulberry32 } from '../../src/util/index.ts';
import {
  binaryInferRequest,
  bodyText,
  bytesOf,
  type ClientTensor,
  fromOrt,
  jsonInferBody,
  postJson,
  type ResponseOutput,
  readInferResponse,
} from '../support/client.ts';
import {
  arithmeticModel,
  identityModel,
  SessionProvider,
  sileroLegacyPath,
  sileroV5Path,
  singleInputModel,
  tensorName,
} from '../support/conformance-models.ts';

const rand = mulberry32(20240611);
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const big64 = () => (BigInt(int(0, 0xffffffff)) << 32n) | BigInt(int(0, 0xffffffff));

/** Random values of each type, led by the edge cases a codec gets wrong. */
const sample = (datatype: Datatype, count: number): TensorData => {
  const fill = <T extends { length: number; [i: number]: unknown }>(
    edges: T,
    make: () => unknown,
    out: T,
  ) => {
    for (let i = 0; i < count; i++) out[i] = i < edges.length ? edges[i] : make();
    return out;
  };
  switch (datatype) {
    case 'BOOL':
      return fill(Uint8Array.of(0, 1), () => int(0, 1), new Uint8Array(count));
    case 'UINT8':
      return fill(Uint8Array.of(0, 255), () => int(0, 255), new Uint8Array(count));
    case 'INT8':
      return fill(Int8Array.of(-128, 127), () => int(-128, 127), new Int8Array(count));
    case 'UINT16':
      return fill(Uint16Array.of(0, 65535), () => int(0, 65535), new Uint16Array(count));
    case 'INT16':
      return fill(Int16Array.of(-32768, 32767), () => int(-32768, 32767), new Int16Array(count));
    case 'UINT32':
      return fill(Uint32Array.of(0, 0xffffffff), () => int(0, 0xffffffff), new Uint32Array(count));
    case 'INT32':
      return fill(
        Int32Array.of(-(2 ** 31), 2 ** 31 - 1),
        () => int(-(2 ** 31), 2 ** 31 - 1),
        new Int32Array(count),
      );
    case 'UINT64':
      return fill(
        BigUint64Array.of(0n, 2n ** 64n - 1n, 2n ** 53n + 1n),
        big64,
        new BigUint64Array(count),
      );
    case 'INT64':
      return fill(
        BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, -(2n ** 53n) - 1n),
        () => BigInt.asIntN(64, big64()),
        new BigInt64Array(count),
      );
    case 'FP16':
      // +Inf, -Inf, NaN, -0, the smallest subnormal, the largest finite
      return fill(
        Uint16Array.of(0x7c00, 0xfc00, 0x7e00, 0x8000, 0x0001, 0x7bff),
        () => int(0, 0x7bff),
        new Uint16Array(count),
      );
    case 'FP32':
      return fill(
        Float32Array.of(
          Number.NaN,
          Number.POSITIVE_INFINITY,
          Number.NEGATIVE_INFINITY,
          -0,
          1e-45,
          3.4e38,
        ),
        () => (rand() - 0.5) * 10 ** int(-8, 8),
        new Float32Array(count),
      );
    case 'FP64':
      return fill(
        Float64Array.of(Number.NaN, -Number.MAX_VALUE, 5e-324, -0, 0.1),
        () => (rand() - 0.5) * 10 ** int(-300, 300),
        new Float64Array(count),
      );
    case 'BYTES':
      return fill(
        ['', 'héllo wörld', '"quoted" \\ back', '😀 emoji', 'line\nbreak', '\u0000nul'],
        () => rand().toString(36),
        new Array<string>(count),
      );
  }
};

const feedsOf = (inputs: readonly ClientTensor[]): Record<string, ort.Tensor> =>
  Object.fromEntries(
    inputs.map((t) => [t.name, new ort.Tensor(ORT_TYPES[t.datatype as Datatype], t.data, t.shape)]),
  );

/** Direct onnxruntime outputs for the same inputs: what the API must return. */
const direct = async (
  session: ort.InferenceSession,
  inputs: readonly ClientTensor[],
  names = session.outputNames,
): Promise<ClientTensor[]> => {
  const out = await session.run(feedsOf(inputs), [...names]);
  return names.map((name) => {
    const t = out[name];
    if (!t) throw new Error(`no output ${name}`);
    return fromOrt(name, t);
  });
};

/** Exact equality: binary bit for bit; JSON by value (FP16 as the numbers its bits denote). */
const expectSame = (actual: ResponseOutput, expected: ClientTensor): void => {
  expect({ name: actual.name, datatype: actual.datatype, shape: actual.shape }).toEqual({
    name: expected.name,
    datatype: expected.datatype,
    shape: expected.shape,
  });
  if (actual.binary) {
    expect(bytesOf(actual.data)).toEqual(bytesOf(expected.data));
  } else if (expected.datatype === 'FP16') {
    expect(actual.data).toEqual(Array.from(expected.data as Uint16Array, halfToNumber));
  } else {
    expect(actual.data).toEqual(expected.data);
  }
};

const expectAllSame = (actual: ResponseOutput[], expected: ClientTensor[]): void => {
  expect(actual.map((o) => o.name)).toEqual(expected.map((o) => o.name));
  actual.forEach((o, i) => {
    const e = expected[i];
    if (e) expectSame(o, e);
  });
};

let provider: SessionProvider;
let app: PredictApp;

beforeAll(async () => {
  provider = await SessionProvider.create({
    identity: identityModel(),
    arithmetic: arithmeticModel(),
    single: singleInputModel(),
    'silero-legacy': sileroLegacyPath(),
    'silero-v5': sileroV5Path(),
  });
  app = createPredictApp({ provider });
});

afterAll(() => provider.release());

describe('every datatype through an Identity per type (13 inputs, 13 outputs, dynamic batch)', () => {
  const inputs = DATATYPES.map(
    (d): ClientTensor => ({
      name: tensorName('x', d),
      datatype: d,
      shape: [4, 3],
      data: sample(d, 12),
    }),
  );

  it('returns JSON outputs equal to onnxruntime, from JSON inputs (FP16 binary alongside)', async () => {
    const res = await app(
      binaryInferRequest('/v2/models/identity/infer', inputs, {
        asJson: (t) => t.datatype !== 'FP16',
      }),
    );
    expect(res.status, bodyText(res)).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expectAllSame(
      readInferResponse(res).outputs,
      await direct(provider.session('identity'), inputs),
    );
  });

  it('returns binary outputs bit-identical to onnxruntime, from binary inputs', async () => {
    const res = await app(
      binaryInferRequest('/v2/models/identity/infer', inputs, {
        parameters: { binary_data_output: true },
      }),
    );
    expect(res.status, bodyText(res)).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const { outputs } = readInferResponse(res);
    expect(outputs.every((o) => o.binary)).toBe(true);
    expectAllSame(outputs, await direct(provider.session('identity'), inputs));
  });

  it('accepts data nested to the shape as well as flat', async () => {
    const res = await app(
      binaryInferRequest('/v2/models/identity/infer', inputs, {
        asJson: (t) => t.datatype !== 'FP16',
        nested: true,
      }),
    );
    expect(res.status, bodyText(res)).toBe(200);
    expectAllSame(
      readInferResponse(res).outputs,
      await direct(provider.session('identity'), inputs),
    );
  });
});

describe('computation, dynamic dims, a scalar input and the outputs filter', () => {
  const inputs: ClientTensor[] = [
    {
      name: 'a',
      datatype: 'FP32',
      shape: [3, 5],
      data: Float32Array.from({ length: 15 }, (_, i) => Math.sin(i) * 3),
    },
    {
      name: 'b',
      datatype: 'FP32',
      shape: [3, 5],
      data: Float32Array.from({ length: 15 }, () => rand() * 4 - 2),
    },
    {
      name: 'c',
      datatype: 'FP32',
      shape: [3, 5],
      data: Float32Array.from({ length: 15 }, () => rand() - 0.5),
    },
    { name: 'scale', datatype: 'FP64', shape: [], data: Float64Array.of(Math.PI) },
  ];

  it('matches onnxruntime in JSON with nested data', async () => {
    const res = await app(
      postJson('/v2/models/arithmetic/infer', jsonInferBody(inputs, { nested: true, id: 'req-1' })),
    );
    expect(res.status, bodyText(res)).toBe(200);
    const { header, outputs } = readInferResponse(res);
    expect(header).toMatchObject({ model_name: 'arithmetic', model_version: '1', id: 'req-1' });
    expectAllSame(outputs, await direct(provider.session('arithmetic'), inputs));
  });

  it('returns only the outputs asked for, in the order asked, each JSON or binary as asked', async () => {
    const res = await app(
      binaryInferRequest('/v2/models/arithmetic/infer', inputs, {
        outputs: [{ name: 'positive' }, { name: 'scaled', parameters: { binary_data: true } }],
      }),
    );
    expect(res.status, bodyText(res)).toBe(200);
    const { outputs } = readInferResponse(res);
    expect(outputs.map((o) => [o.name, o.binary])).toEqual([
      ['positive', false],
      ['scaled', true],
    ]);
    expectAllSame(
      outputs,
      await direct(provider.session('arithmetic'), inputs, ['positive', 'scaled']),
    );
  });

  it('serves a pinned version with the routing headers', async () => {
    const res = await app(
      postJson('/v2/models/arithmetic/versions/1/infer', jsonInferBody(inputs)),
    );
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({ 'x-maas-model-version': '1', 'x-maas-variant': 'pinned' });
    const routed = await app(postJson('/v2/models/arithmetic/infer', jsonInferBody(inputs)));
    expect(routed.headers).toMatchObject({
      'x-maas-model-version': '1',
      'x-maas-variant': 'production',
    });
  });
});

describe('V1 :predict', () => {
  it('stacks instances along the batch dim and returns rows equal to onnxruntime', async () => {
    const rows = [
      [1, 2, 3, 4],
      [-0.5, 0.25, 1e-7, 12345.678],
    ];
    const res = await app(postJson('/v1/models/single:predict', { instances: rows }));
    expect(res.status, bodyText(res)).toBe(200);
    const [y, total] = await direct(provider.session('single'), [
      { name: 'x', datatype: 'FP32', shape: [2, 4], data: Float32Array.from(rows.flat()) },
    ]);
    const yData = Array.from(y?.data as Float32Array);
    const totals = Array.from(total?.data as Float32Array);
    expect(JSON.parse(bodyText(res))).toEqual({
      predictions: [
        { y: yData.slice(0, 4), total: totals[0] },
        { y: yData.slice(4, 8), total: totals[1] },
      ],
    });
  });
});

describe('Silero VAD (third-party, several inputs, recurrent state)', () => {
  const audio = (n: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i / 7) * 0.3 + (rand() - 0.5) * 0.05);
  const sr = (): ClientTensor => ({
    name: 'sr',
    datatype: 'INT64',
    shape: [],
    data: BigInt64Array.of(16000n),
  });

  /** Runs `steps` chunks through the API and directly, feeding each step's state to the next. */
  const chain = async (
    name: string,
    stateNames: [string, string][],
    initial: ClientTensor[],
    binary: boolean,
  ) => {
    let state = initial;
    let directState = initial;
    for (let step = 0; step < 3; step++) {
      const chunk: ClientTensor = {
        name: 'input',
        datatype: 'FP32',
        shape: [1, 512],
        data: audio(512),
      };
      const inputs = [chunk, sr(), ...state];
      const res = await app(
        binary
          ? binaryInferRequest(`/v2/models/${name}/infer`, inputs, {
              parameters: { binary_data_output: true },
            })
          : postJson(`/v2/models/${name}/infer`, jsonInferBody(inputs)),
      );
      expect(res.status, bodyText(res)).toBe(200);
      const { outputs } = readInferResponse(res);
      const expected = await direct(provider.session(name), [chunk, sr(), ...directState]);
      expectAllSame(outputs, expected);
      const next = (from: { name: string; shape: number[]; data: unknown }[]) =>
        stateNames.map(([input, output]): ClientTensor => {
          const o = from.find((t) => t.name === output);
          if (!o) throw new Error(`no ${output}`);
          return { name: input, datatype: 'FP32', shape: o.shape, data: o.data as Float32Array };
        });
      state = next(outputs);
      directState = next(expected);
    }
  };

  for (const binary of [false, true]) {
    const mode = binary ? 'binary' : 'JSON';
    it(`silero_vad_legacy (input, sr, h, c → output, hn, cn) over 3 steps in ${mode}`, async () => {
      const zeros = (): Float32Array => new Float32Array(2 * 64);
      await chain(
        'silero-legacy',
        [
          ['h', 'hn'],
          ['c', 'cn'],
        ],
        [
          { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: zeros() },
          { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: zeros() },
        ],
        binary,
      );
    });

    it(`silero_vad_v5 (input, state, sr → output, stateN) over 3 steps in ${mode}`, async () => {
      await chain(
        'silero-v5',
        [['state', 'stateN']],
        [{ name: 'state', datatype: 'FP32', shape: [2, 1, 128], data: new Float32Array(256) }],
        binary,
      );
    });
  }
});
