import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION, startLocalS3 } from '../../local/s3/index.ts';
import { GENERATED_DIR } from '../../models/generate.ts';
import { Registry } from '../../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../../src/storage/s3.ts';
import { irisSamples, ROOT, runMaas, setProduction } from '../support/cli-predict.ts';
import { registerVersion } from '../support/registry.ts';

const BUCKET = 'maas-models';
let home: string;
let dev: ChildProcess | undefined;

/**
 * The data `npm start` leaves behind once the examples are registered, so the stack under test
 * starts without ingesting them again (that path has its own tests).
 */
async function seedHome(directory: string): Promise<void> {
  const s3 = await startLocalS3({ port: 0, directory: join(directory, 's3'), bucket: BUCKET });
  const client = createS3Client({
    endpoint: s3.endpoint,
    region: LOCAL_S3_REGION,
    credentials: LOCAL_S3_CREDENTIALS,
  });
  try {
    const registry = new Registry(new S3ObjectStore({ bucket: BUCKET, client }));
    for (const model of ['iris', 'encoder']) {
      const bytes = new Uint8Array(await readFile(join(GENERATED_DIR, `${model}.onnx`)));
      const { version } = await registerVersion(registry, model, bytes);
      await setProduction(registry, model, version);
    }
  } finally {
    client.destroy();
    await s3.close();
  }
}

const refusesConnections = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'maas-dev-'));
  await seedHome(home);
});
afterAll(async () => {
  // forwarded to the stack, which must not outlive a failed test
  if (dev?.exitCode === null) dev.kill('SIGTERM');
  await rm(home, { recursive: true, force: true });
});

describe('maas dev', () => {
  it('runs the local stack as npm start does; a Ctrl-C to its group stops it cleanly', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'dev'], {
      cwd: ROOT,
      env: {
        ...process.env,
        MAAS_HOME: home,
        MAAS_S3_PORT: '0',
        MAAS_CONSOLE_PORT: '0',
        PORT: '0',
        MAAS_WORKERS: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own process group, so the SIGINT below reaches the group as a terminal's Ctrl-C does
      detached: true,
    });
    dev = child;
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const running = await new Promise<boolean>((resolve) => {
      child.stdout.on('data', () => {
        if (output.includes('Ctrl-C stops everything')) resolve(true);
      });
      void exited.then(() => resolve(false));
    });
    expect(running, output).toBe(true);
    expect(output).toContain('iris: already registered');
    const api = /HTTP API\s+(http:\/\/127\.0\.0\.1:(\d+))/.exec(output);
    const port = api?.[2] ?? '';

    const predict = await runMaas(['predict', 'iris', '--data', '-'], {
      env: { PORT: port },
      input: JSON.stringify((await irisSamples())[0]),
    });
    expect(predict.stderr).toBe('');
    expect(predict.stdout).toMatch(/^version:\s+v1 \(production\)$/m);

    process.kill(-(child.pid as number), 'SIGINT');
    expect(await exited).toBe(0);
    expect(output.match(/stopping/g)).toHaveLength(1);
    expect(output).toContain(`onnx-maas: stopped; the data stays in ${home}`);
    expect(await refusesConnections(Number(port))).toBe(true);
  });
});
