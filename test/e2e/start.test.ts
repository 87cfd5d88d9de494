import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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

  it('stops cleanly on SIGTERM and keeps the data across a restart', async () => {
    expect(await stop(first)).toBe(0);
    expect(first.output()).toContain('onnx-maas: stopped');
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
