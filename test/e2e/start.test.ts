import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStackInfo } from '../../local/stack-info.ts';
import { ensureExampleModels } from '../../models/generate.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY = 'Ctrl-C stops everything.';

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `npm start` as a user runs it (tsx local/main.ts), on free ports and a temporary home. */
const start = async (home: string): Promise<Started> => {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), 'local/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: '0',
      MAAS_S3_PORT: '0',
      MAAS_CONSOLE_PORT: '0',
      MAAS_HOME: home,
      MAAS_WORKERS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const deadline = Date.now() + 150_000;
  while (!text.includes(READY)) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${text}`);
    if (Date.now() > deadline) throw new Error(`npm start did not get ready:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, output: () => text, exited };
};

/** A shell in `cwd` with this machine's PATH but none of the stack's port variables. */
const shell = (
  command: string,
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> => {
  const env = { ...process.env };
  for (const name of [
    'PORT',
    'MAAS_S3_PORT',
    'MAAS_HOME',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_PROFILE',
    'AWS_DEFAULT_REGION',
    'AWS_REGION',
  ]) {
    delete env[name];
  }
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', command], { cwd, env, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
};

const bannerLine = (output: string, start: string): string => {
  const line = output
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith(start) || l.includes(` ${start}`));
  if (line === undefined) throw new Error(`no line with ${start} in:\n${output}`);
  return line;
};

const stop = async (started: Started): Promise<number | null> => {
  started.child.kill('SIGTERM');
  return started.exited;
};

describe('npm start', () => {
  let home: string;
  let first: Started;
  let api: string;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'maas-start-'));
    first = await start(home);
    api = /HTTP API {2}(http:\/\/\S+)/.exec(first.output())?.[1] ?? '';
  }, 180_000);
  afterAll(async () => {
    if (first?.child.exitCode === null) first.child.kill('SIGKILL');
    await rm(home, { recursive: true, force: true });
  });

  it('seeds the examples through the upload path', () => {
    expect(first.output()).toContain(
      'iris: uploaded to incoming/iris/iris.onnx, waiting for ingest...',
    );
    expect(first.output()).toMatch(/ingest: iris v1 registered, serves fp32 \(production\)/);
    expect(first.output()).toMatch(
      /ingest: encoder v1 registered, serves (int8|fp32) \(production\)/,
    );
  });

  it('prints a curl whose request returns the Iris prediction', async () => {
    const curl = first
      .output()
      .split('\n')
      .find((line) => line.startsWith('curl '));
    const match = /^curl -s -X POST (\S+) -H 'content-type: application\/json' -d '([^']*)'$/.exec(
      curl ?? '',
    );
    expect(match).not.toBeNull();
    const [, url = '', body = ''] = match ?? [];
    expect(url).toBe(`${api}/v2/models/iris/infer`);
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-maas-model-version')).toBe('1');
    const result = (await response.json()) as {
      model_name: string;
      outputs: { name: string; data: number[] }[];
    };
    expect(result.model_name).toBe('iris');
    // the first Iris sample is a setosa: class 0
    expect(result.outputs.find((o) => o.name === 'label')?.data).toEqual([0]);
  });

  it('answers model metadata and the model list', async () => {
    const iris = (await (await fetch(`${api}/v2/models/iris`)).json()) as Record<string, unknown>;
    expect(iris).toMatchObject({ name: 'iris', platform: 'onnx_onnxv1' });
    expect(iris.versions).toContain('1');
    const list = (await (await fetch(`${api}/v2/models`)).json()) as {
      models: { name: string; production?: number }[];
    };
    expect(list.models).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'iris', production: 1 }),
        expect.objectContaining({ name: 'encoder', production: 1 }),
      ]),
    );
  });

  it('writes stack.json with the ports it really listens on', () => {
    const found = readStackInfo(home);
    expect(found?.live).toBe(true);
    expect(found?.info).toMatchObject({
      pid: first.child.pid,
      home,
      api,
      bucket: 'maas-models',
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    expect(found?.info.s3).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(found?.info.console).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('lets the CLI of a second terminal find the stack on its ports with no flags', async () => {
    // Only MAAS_HOME, as the banner prints it: no PORT, no MAAS_S3_PORT, no --endpoint.
    const result = await shell(`MAAS_HOME=${home} npx maas --json models`, ROOT);
    expect(result.stderr).not.toMatch(/maas:/);
    expect(result.code).toBe(0);
    const models = JSON.parse(result.stdout) as { name: string }[];
    expect(models.map((m) => m.name)).toEqual(expect.arrayContaining(['iris', 'encoder']));
  }, 120_000);

  it('prints an aws s3 cp line that uploads when pasted as it is', async () => {
    const aws = await shell('command -v aws', ROOT);
    if (aws.code !== 0) return; // .ci/run installs Debian's awscli
    const line = bannerLine(first.output(), 'aws s3 cp model.onnx');
    expect(line).toContain('AWS_ACCESS_KEY_ID=S3RVER');
    const dir = await mkdtemp(join(tmpdir(), 'maas-paste-'));
    try {
      const { iris } = await ensureExampleModels();
      await copyFile(iris.path, join(dir, 'model.onnx'));
      const result = await shell(line, dir);
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain(
        'upload: ./model.onnx to s3://maas-models/incoming/mymodel/model.onnx',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('prints a maas push line that registers the model when pasted in the project', async () => {
    const line = bannerLine(first.output(), 'npx maas push model.onnx');
    expect(line).toContain(`MAAS_HOME=${home}`);
    const { iris } = await ensureExampleModels();
    const samples = JSON.parse(await readFile(iris.samplesPath, 'utf8')) as unknown[];
    expect(samples.length).toBeGreaterThan(0);
    // the file the user names: the example model, as a path from the project directory
    const result = await shell(
      `${line.replace('model.onnx', iris.path).replace('mymodel', 'pasted')} --samples ${iris.samplesPath}`,
      ROOT,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/registered pasted v1/);
  }, 120_000);

  it('stops cleanly on SIGTERM and keeps the data across a restart', async () => {
    expect(await stop(first)).toBe(0);
    expect(first.output()).toContain('onnx-maas: stopped');
    expect(existsSync(join(home, 'stack.json'))).toBe(false);
    const second = await start(home);
    try {
      expect(second.output()).toContain('iris: already registered');
      expect(second.output()).toContain('encoder: already registered');
      const url = /HTTP API {2}(http:\/\/\S+)/.exec(second.output())?.[1];
      const response = await fetch(`${url}/v2/models/encoder`);
      expect(response.status).toBe(200);
    } finally {
      expect(await stop(second)).toBe(0);
    }
  }, 120_000);
});
