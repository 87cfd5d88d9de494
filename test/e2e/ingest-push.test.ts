import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { hostileModels } from '../support/hostile-models.ts';
import { mlpModel, randomFloats } from '../support/quantize-fixtures.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

describe('maas push against the local stack', () => {
  let home: string;
  let stack: LocalStack;

  /** `npx maas ...` as a child process, pointed at this stack's S3. */
  const maas = (...args: string[]): Promise<CliRun> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [join(ROOT, 'cli/bin.js'), '--endpoint', stack.urls.s3, '--bucket', stack.bucket, ...args],
        { cwd: ROOT, env: process.env },
        (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
          resolve({ code, stdout, stderr });
        },
      );
    });

  const file = async (name: string, bytes: Uint8Array | string): Promise<string> => {
    const path = join(home, name);
    await writeFile(path, bytes);
    return path;
  };

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'maas-push-'));
    stack = await startLocalStack({
      home: join(home, 'stack'),
      s3Port: 0,
      bucket: 'maas-models',
      httpPort: 0,
      workers: 1,
      ingest: { onOutput: () => {} },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await rm(home, { recursive: true, force: true });
  });

  it('uploads samples then the model, and prints the version and the served variant', async () => {
    const model = await file('mlp.onnx', mlpModel({ widths: [256, 1024, 256], seed: 5 }));
    const samples = await file(
      'mlp.samples.json',
      JSON.stringify(
        [1, 2].map((seed) => ({
          inputs: [
            {
              name: 'x',
              datatype: 'FP32',
              shape: [4, 256],
              data: Array.from(randomFloats(4 * 256, seed)),
            },
          ],
        })),
      ),
    );
    const run = await maas('push', model, '--model', 'mlp', '--samples', samples);
    expect(run.stderr).not.toMatch(/^maas:/m);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^uploaded s3:\/\/maas-models\/incoming\/mlp\/mlp\.onnx/m);
    expect(run.stdout).toMatch(/^registered mlp v1 \(serves (int8|fp32)\)/m);
    expect(run.stdout).toMatch(
      /^int8 vs fp32: size 0\.2\d\dx, p50 latency \d+\.\d{3}x, cosine 0\.99\d+$/m,
    );
    expect(run.stdout).toMatch(/^decision: \S/m);

    const show = await maas('show', 'mlp', '1');
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/size ratio/);
    expect(show.stdout).toMatch(/latency ratio/);
    expect(show.stdout).toMatch(/cosine 0\.99\d+/);
  });

  it('respects --no-quantize', async () => {
    const model = await file('plain.onnx', mlpModel({ widths: [256, 512, 256], seed: 6 }));
    const run = await maas('push', model, '--model', 'plain', '--no-quantize');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^registered plain v1 \(serves fp32\)/m);
  });

  it('prints the rejection reason and fails', async () => {
    const external = hostileModels().find((h) => h.expectedCode === 'ExternalData');
    if (external === undefined) throw new Error('no ExternalData case in the corpus');
    const model = await file('evil.onnx', external.bytes);
    const run = await maas('push', model, '--model', 'evil');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(external.messageIncludes);
  });
});
