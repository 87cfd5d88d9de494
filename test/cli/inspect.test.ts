import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleModels } from '../../models/generate.ts';
import { decodeSidecar } from '../../src/ingest/index.ts';
import { readSignature } from '../../src/onnx/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const maas = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'cli/bin.js'), ...args],
      { cwd: ROOT },
      (err, stdout, stderr) =>
        resolve({
          code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1,
          stdout,
          stderr,
        }),
    );
  });

describe('maas inspect', () => {
  let work: string;
  let encoder: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'maas-inspect-'));
    encoder = (await ensureExampleModels()).encoder.path;
  }, 120_000);
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('shows the signature and writes a samples template that ingest accepts', async () => {
    const template = join(work, 'encoder.samples.json');
    const run = await maas('inspect', encoder, '--template', template);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^input\s+input_ids\s+INT64\s+\[batch, sequence\]/m);
    expect(run.stdout).toContain('verdict: passes validation');
    const body = await readFile(template);
    const signature = readSignature(await readFile(encoder));
    const decoded = decodeSidecar('template', body, signature, {
      maxSamples: 32,
      maxElements: 1 << 22,
    });
    expect(decoded.feeds.length).toBe(1);
  }, 60_000);

  it('gives the reason ingest would reject a file, and exits non-zero', async () => {
    const broken = join(work, 'broken.onnx');
    await writeFile(broken, 'not a model');
    const run = await maas('--json', 'inspect', broken);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ verdict: 'rejected', code: expect.any(String) });
  }, 60_000);

  it('prints the version', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const run = await maas('--version');
    expect(run.stdout.trim()).toBe(pkg.version);
  }, 60_000);
});
