import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Architecture } from '../../infra/settings.ts';
import { toEvent } from '../../local/http/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { s3Env, startTestS3, type TestS3 } from '../support/local-s3.ts';
import { exampleModels, readJson, type V2Tensor } from '../support/models.ts';
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
    const [request] = await readJson<unknown[]>(
      fileURLToPath(new URL('../../models/iris.samples.json', import.meta.url)),
    );
    const [expected] = await readJson<{ outputs: V2Tensor[] }[]>(
      fileURLToPath(new URL('../../models/iris.expected.json', import.meta.url)),
    );
    const event = toEvent({
      method: 'POST',
      url: '/v2/models/iris/infer',
      rawHeaders: ['host', 'api.test', 'content-type', 'application/json'],
      body: Buffer.from(JSON.stringify(request)),
      sourceIp: '127.0.0.1',
      requestId: 'bundle-test',
      receivedAt: new Date(),
    });
    const eventFile = join(work, 'event.json');
    const resultFile = join(work, 'result.json');
    await writeFile(eventFile, JSON.stringify(event));

    // x86_64 is this machine's architecture: its assets are the ones that can run here.
    const asset = synth('x86_64').assets['maas-predict'] ?? '';
    await promisify(execFile)(
      process.execPath,
      [
        fileURLToPath(new URL('./invoke-bundle.mjs', import.meta.url)),
        asset,
        eventFile,
        resultFile,
      ],
      {
        // The asset folder only: nothing may resolve from the project's node_modules.
        cwd: asset,
        maxBuffer: 16 * 1024 * 1024,
        env: {
          PATH: process.env.PATH,
          ...s3Env(s3.s3),
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '2048',
          MAAS_TMP_CACHE_DIR: join(work, 'model-cache'),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          POWERTOOLS_METRICS_NAMESPACE: 'Maas',
          POWERTOOLS_SERVICE_NAME: 'maas-predict',
        },
      },
    );
    const result = JSON.parse(await readFile(resultFile, 'utf8')) as {
      statusCode: number;
      headers: Record<string, string>;
      body: string;
    };
    expect(result.statusCode, result.body).toBe(200);
    expect(result.headers['x-maas-model-version']).toBe('1');
    const body = JSON.parse(result.body) as InferResponse;
    expect(body.model_name).toBe('iris');
    for (const want of expected?.outputs ?? []) {
      const got = body.outputs.find((output) => output.name === want.name);
      expect(got?.shape, want.name).toEqual(want.shape);
      const values = (got?.data ?? []) as number[];
      (want.data as number[]).forEach((value, i) => {
        expect(values[i], `${want.name}[${i}]`).toBeCloseTo(value, 4);
      });
    }
  });
});
