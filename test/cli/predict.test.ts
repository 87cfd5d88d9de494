import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IRIS_SAMPLES_PATH } from '../../models/generate.ts';
import {
  type IrisExpected,
  type IrisSample,
  irisExpected,
  irisSamples,
  type PredictStack,
  runMaas,
  startPredictStack,
} from '../support/cli-predict.ts';

let stack: PredictStack;
let work: string;
let sample: IrisSample;
let expected: IrisExpected;
let requestFile: string;

const maas = (args: string[], options: { input?: string; env?: Record<string, string> } = {}) =>
  runMaas(args, {
    ...options,
    env: { PORT: String(stack.api.port), ...options.env },
  });

/** A port nothing listens on: bound once to learn a free one, then released. */
const closedPort = (): Promise<number> =>
  new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
    });
  });

beforeAll(async () => {
  stack = await startPredictStack();
  work = await mkdtemp(join(tmpdir(), 'maas-predict-'));
  sample = (await irisSamples())[0] as IrisSample;
  expected = (await irisExpected())[0] as IrisExpected;
  requestFile = join(work, 'request.json');
  await writeFile(requestFile, JSON.stringify(sample));
});
afterAll(async () => {
  await stack?.stop();
  await rm(work, { recursive: true, force: true });
});

interface InferJson {
  model_name: string;
  model_version: string;
  outputs: { name: string; datatype: string; shape: number[]; data: number[] }[];
}

const expectIrisOutputs = (response: InferJson) => {
  const [probabilities, label] = response.outputs;
  const [wantProbabilities, wantLabel] = expected.outputs;
  expect(probabilities).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [1, 3] });
  probabilities?.data.forEach((value, i) => {
    expect(value).toBeCloseTo(wantProbabilities?.data[i] ?? Number.NaN, 5);
  });
  expect(label).toEqual({ ...wantLabel });
};

describe('maas predict', () => {
  it('prints the outputs as a table with the version and variant that served them', async () => {
    const run = await maas(['predict', 'iris', '--data', requestFile]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^model:\s+iris$/m);
    expect(run.stdout).toMatch(/^version:\s+v1 \(production\)$/m);
    expect(run.stdout).toMatch(/^OUTPUT\s+DATATYPE\s+SHAPE\s+VALUES$/m);
    // 6 significant digits, as models/iris.expected.json has them; its smallest probability,
    // near 1e-12, differs from what onnxruntime serves in the last digits
    expect(run.stdout).toMatch(
      /^probabilities\s+FP32\s+\[1, 3\]\s+0\.997195, 0\.00280454, 7\.628\d\de-13$/m,
    );
    expect(run.stdout).toMatch(/^label\s+INT64\s+\[1\]\s+0$/m);
  });

  it('prints the raw V2 response with --json', async () => {
    const run = await maas(['predict', 'iris', '--data', requestFile, '--json']);
    expect(run.code).toBe(0);
    const response = JSON.parse(run.stdout) as InferJson;
    expect(response).toMatchObject({ model_name: 'iris', model_version: '1' });
    expectIrisOutputs(response);
  });

  it('pins a version with --version', async () => {
    const [table, json] = await Promise.all([
      maas(['predict', 'iris', '--version', '2', '--data', requestFile]),
      maas(['predict', 'iris', '--version', '2', '--data', requestFile, '--json']),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^version:\s+v2 \(pinned\)$/m);
    const response = JSON.parse(json.stdout) as InferJson;
    expect(response.model_version).toBe('2');
    expectIrisOutputs(response);
  });

  it('reads the request from stdin with --data -', async () => {
    const run = await maas(['predict', 'iris', '--data', '-', '--json'], {
      input: JSON.stringify(sample),
    });
    expect(run.code).toBe(0);
    expectIrisOutputs(JSON.parse(run.stdout) as InferJson);
  });

  it('posts a V1 {"instances"} body to :predict and prints the predictions', async () => {
    const input = JSON.stringify({ instances: [sample.inputs[0]?.data] });
    const [table, json] = await Promise.all([
      maas(['predict', 'iris', '--data', '-'], { input }),
      maas(['predict', 'iris', '--data', '-', '--json'], { input }),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^version:\s+v1 \(production\)$/m);
    expect(table.stdout).toMatch(/^ROW\s+PREDICTION$/m);
    expect(table.stdout).toMatch(/^0\s+\{probabilities: \[0\.997195, [^\]]+\], label: 0\}$/m);
    const response = JSON.parse(json.stdout) as {
      predictions: { probabilities: number[]; label: number }[];
    };
    expect(response.predictions).toHaveLength(1);
    expect(response.predictions[0]?.label).toBe(0);
  });

  it('reads binary outputs back into values when the request asks for them', async () => {
    const input = JSON.stringify({ ...sample, parameters: { binary_data_output: true } });
    const [table, json] = await Promise.all([
      maas(['predict', 'iris', '--data', '-'], { input }),
      maas(['predict', 'iris', '--data', '-', '--json'], { input }),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^probabilities\s+FP32\s+\[1, 3\]\s+0\.997195, /m);
    const response = JSON.parse(json.stdout) as InferJson;
    expectIrisOutputs(response);
    expect(response.outputs.every((output) => !('parameters' in output))).toBe(true);
  });

  it('exits 1 with the API error on stderr for an unknown model and a wrong input', async () => {
    const wrongShape = JSON.stringify({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }],
    });
    const [unknown, unknownVersion, shape] = await Promise.all([
      maas(['predict', 'no-such-model', '--data', requestFile]),
      maas(['predict', 'iris', '--version', '9', '--data', requestFile]),
      maas(['predict', 'iris', '--data', '-'], { input: wrongShape }),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      /^maas: POST \/v2\/models\/no-such-model\/infer answered 404 Not Found: \{"error":".*no-such-model.*"\}$/m,
    );
    expect(unknownVersion.code).toBe(1);
    expect(unknownVersion.stderr).toContain('answered 404');
    expect(shape.code).toBe(1);
    expect(shape.stderr).toMatch(/answered 400 Bad Request: \{"error":".*input.*"\}/);
    for (const run of [unknown, unknownVersion, shape]) expect(run.stdout).toBe('');
  });

  it('says to start the stack when the API does not answer', async () => {
    const run = await maas(['predict', 'iris', '--data', requestFile], {
      env: { PORT: String(await closedPort()) },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /cannot reach the local API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    );
    expect(run.stderr).toContain('is `npm start` running?');
  });

  it('refuses request bodies it cannot send, saying what to send instead', async () => {
    const [samplesFile, notJson, neither, v1Pinned, missing, badName] = await Promise.all([
      maas(['predict', 'iris', '--data', IRIS_SAMPLES_PATH]),
      maas(['predict', 'iris', '--data', '-'], { input: '{"inputs": [' }),
      maas(['predict', 'iris', '--data', '-'], { input: '{"rows": []}' }),
      maas(['predict', 'iris', '--version', '1', '--data', '-'], {
        input: '{"instances": [[1, 2, 3, 4]]}',
      }),
      maas(['predict', 'iris', '--data', join(work, 'absent.json')]),
      maas(['predict', 'Iris!', '--data', requestFile]),
    ]);
    expect(samplesFile.stderr).toContain('is a JSON array of 4 (a samples file?)');
    expect(notJson.stderr).toContain('the request on stdin is not JSON');
    expect(neither.stderr).toContain('has neither "inputs" nor "instances"');
    expect(v1Pinned.stderr).toContain('--version pins a version on the V2 route only');
    expect(missing.stderr).toContain('cannot read --data');
    expect(badName.stderr).toContain('model name "Iris!" is not valid');
    for (const run of [samplesFile, notJson, neither, v1Pinned, missing, badName]) {
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
    }
  });
});
