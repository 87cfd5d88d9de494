import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { ensureExampleModels } from '../../models/generate.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

describe('pushing the same file again', () => {
  let work: string;
  let stack: LocalStack;
  let iris: { path: string; samplesPath: string };

  const maas = (...args: string[]): Promise<CliRun> => {
    return new Promise((resolve) => {
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
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'maas-repush-'));
    stack = await startLocalStack({
      home: join(work, 'stack'),
      s3Port: 0,
      bucket: 'maas-models',
      httpPort: 0,
      workers: 1,
      ingest: { onOutput: () => {} },
    });
    const examples = await ensureExampleModels();
    iris = { path: join(work, 'iris.onnx'), samplesPath: examples.iris.samplesPath };
    await copyFile(examples.iris.path, iris.path);
    await writeFile(join(work, 'broken.onnx'), 'not a model at all');
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('answers a re-push of a registered file at once with the version it became', async () => {
    const first = await maas('push', iris.path, '--model', 'iris', '--samples', iris.samplesPath);
    expect(first.stderr).not.toMatch(/maas:/);
    expect(first.stdout).toMatch(
      /^registered iris v1 \(serves fp32\): production, serving all traffic/m,
    );

    // --timeout 5: waiting for a decision ingest will not take again would fail the push
    const again = await maas(
      'push',
      iris.path,
      '--model',
      'iris',
      '--samples',
      iris.samplesPath,
      '--timeout',
      '5',
    );
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^already registered iris v1 \(serves fp32\): production/m);
    expect(again.stdout).toContain('change one of them (e.g. --samples, --no-quantize)');
    expect(again.stderr).not.toContain('waiting for ingest');
  }, 120_000);

  it('evaluates the same bytes again when an option changes, and says it became a candidate', async () => {
    const run = await maas(
      'push',
      iris.path,
      '--model',
      'iris',
      '--samples',
      iris.samplesPath,
      '--no-quantize',
      '--canary-weight',
      '0.5',
    );
    expect(run.stderr).not.toMatch(/maas:/);
    expect(run.stdout).toMatch(
      /^registered iris v2 \(serves fp32\): candidate at 50 % of traffic until \S+, then production if its alarms stay OK/m,
    );
  }, 120_000);

  it('answers a re-push of a rejected file at once with the reason, and evaluates it with new samples', async () => {
    const broken = join(work, 'broken.onnx');
    const first = await maas('push', broken, '--model', 'broken');
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/model "broken" was rejected: /);

    const again = await maas('push', broken, '--model', 'broken', '--timeout', '5');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /model "broken" was rejected: this file, samples and options were already rejected \(\S+\): /,
    );

    // New samples make it a new upload: ingest decides again (and, the bytes being no model,
    // rejects again), rather than leaving the push waiting on a decision that never comes.
    const samples = join(work, 'broken.samples.json');
    await writeFile(
      samples,
      JSON.stringify([{ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }]),
    );
    const withSamples = await maas(
      'push',
      broken,
      '--model',
      'broken',
      '--samples',
      samples,
      '--timeout',
      '60',
    );
    expect(withSamples.code).toBe(1);
    expect(withSamples.stderr).toMatch(/model "broken" was rejected: /);
    expect(withSamples.stderr).not.toContain('already rejected');
  }, 120_000);
});
