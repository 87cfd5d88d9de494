import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../../../src/registry/index.ts';
import { runMaas } from '../../support/cli-predict.ts';
import { modelWith } from '../../support/guard-fixtures.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let s3: TestS3;
let child: ChildProcess | undefined;

beforeAll(async () => {
  s3 = await startTestS3();
  await modelWith(new Registry(s3.store), 'iris', 1, { production: 1 });
});
afterAll(async () => {
  if (child?.exitCode === null) child.kill('SIGKILL');
  await s3?.cleanup();
});

describe('maas console', () => {
  it('prints its URL, serves the registry of the target, and stops on Ctrl-C', async () => {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'cli/main.ts',
        '--endpoint',
        s3.s3.endpoint,
        'console',
        '--port',
        '0',
        '--metrics-from',
        'http://127.0.0.1:9',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child?.once('exit', resolve));
    const deadline = Date.now() + 60_000;
    while (
      !output.includes('Ctrl-C stops it.') &&
      Date.now() < deadline &&
      child.exitCode === null
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const url = /maas console: (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    expect(url, output).toBeDefined();
    expect(output).toContain(`registry  ${s3.s3.endpoint} bucket maas-models`);
    const models = (await (await fetch(`${url}/api/models`)).json()) as {
      models: { name: string; status: string }[];
    };
    expect(models.models).toEqual([expect.objectContaining({ name: 'iris', status: 'healthy' })]);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('maas canary changes the weight and records it, as the console does', async () => {
    const registry = new Registry(s3.store);
    await modelWith(registry, 'weighed', 2, {
      production: 1,
      candidate: {
        version: 2,
        weight: 0.1,
        bakeUntil: new Date(Date.now() + 60_000).toISOString(),
      },
    });
    const run = await runMaas([
      '--endpoint',
      s3.s3.endpoint,
      'canary',
      'weighed',
      '--weight',
      '0.4',
    ]);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('weighed: candidate v2 takes 0.4 of the traffic (was 0.1)');
    const [record] = await registry.history('weighed');
    expect(record).toMatchObject({
      event: 'candidate',
      version: 2,
      actor: 'cli',
      reason: 'canary weight changed from 0.1 to 0.4',
      details: { manual: true, weight: 0.4, previousWeight: 0.1 },
    });
    const bad = await runMaas(['--endpoint', s3.s3.endpoint, 'canary', 'weighed', '--weight', '7']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('canary weight must be a number from 0 to 1');
  });

  it('refuses a bad --port with the reason', async () => {
    const bad = spawn(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', 'console', '--port', 'x'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    bad.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => bad.once('exit', resolve));
    expect(code).not.toBe(0);
    expect(stderr).toContain('--port must be a port number from 0 to 65535, got "x"');
  });
});
