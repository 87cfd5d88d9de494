import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LocalApi, startLocalApi } from '../../local/http/index.ts';
import { GENERATED_DIR, IRIS_EXPECTED_PATH, IRIS_SAMPLES_PATH } from '../../models/generate.ts';
import { Registry } from '../../src/registry/index.ts';
import { s3Env, startTestS3, type TestS3 } from './local-s3.ts';
import { registerVersion } from './registry.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** tsx by absolute URL, so the CLI also starts from a directory outside the project */
const TSX = import.meta.resolve('tsx');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `maas ...` as a user runs it: a child process on cli/main.ts through tsx. */
export function runMaas(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; cwd?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', TSX, join(ROOT, 'cli/main.ts'), ...args],
      { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(options.input ?? '');
  });
}

export async function setProduction(
  registry: Registry,
  model: string,
  version: number,
): Promise<void> {
  await registry.updateAliases(model, (current) => ({
    model,
    production: version,
    knownGood: [...(current?.knownGood ?? []), version],
    rolledBack: current?.rolledBack ?? [],
    updatedAt: new Date().toISOString(),
  }));
}

export interface IrisSample {
  inputs: { name: string; datatype: string; shape: number[]; data: number[] }[];
}
export interface IrisExpected {
  outputs: { name: string; datatype: string; shape: number[]; data: number[] }[];
}

export const irisSamples = async (): Promise<IrisSample[]> =>
  JSON.parse(await readFile(IRIS_SAMPLES_PATH, 'utf8')) as IrisSample[];
export const irisExpected = async (): Promise<IrisExpected[]> =>
  JSON.parse(await readFile(IRIS_EXPECTED_PATH, 'utf8')) as IrisExpected[];

/** The local S3 and the local HTTP API running the real predict handler, with Iris registered. */
export interface PredictStack {
  s3: TestS3;
  api: LocalApi;
  registry: Registry;
  /** handler instances' log lines, kept out of the test output */
  logs: string[];
  stop(): Promise<void>;
}

/** Iris v1 as production and v2 (the same bytes) registered without an alias: pinned only. */
export async function startPredictStack(): Promise<PredictStack> {
  const s3 = await startTestS3();
  const cache = await mkdtemp(join(tmpdir(), 'maas-cli-cache-'));
  const registry = new Registry(s3.store);
  const iris = new Uint8Array(await readFile(join(GENERATED_DIR, 'iris.onnx')));
  await registerVersion(registry, 'iris', iris);
  await setProduction(registry, 'iris', 1);
  await registerVersion(registry, 'iris', iris);
  const logs: string[] = [];
  let api: LocalApi;
  try {
    api = await startLocalApi({
      port: 0,
      workers: 1,
      env: {
        ...s3Env(s3.s3),
        MAAS_TMP_CACHE_DIR: cache,
      },
      onOutput: (line) => logs.push(line),
    });
  } catch (err) {
    await s3.cleanup();
    throw err;
  }
  return {
    s3,
    api,
    registry,
    logs,
    async stop() {
      await api.close();
      await s3.cleanup();
      await rm(cache, { recursive: true, force: true });
    },
  };
}
