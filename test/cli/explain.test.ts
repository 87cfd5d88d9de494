import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  irisSamples,
  type PredictStack,
  runMaas,
  startPredictStack,
} from '../support/cli-predict.ts';

let stack: PredictStack;
let work: string;
let requestFile: string;

const maas = (args: string[]) => runMaas(args, { env: { PORT: String(stack.api.port) } });

beforeAll(async () => {
  stack = await startPredictStack();
  work = await mkdtemp(join(tmpdir(), 'maas-explain-cli-'));
  requestFile = join(work, 'request.json');
  await writeFile(requestFile, JSON.stringify((await irisSamples())[2]));
});
afterAll(async () => {
  await stack?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('maas explain', () => {
  it('prints the top attributions as a bar list, largest first', async () => {
    const run = await maas(['explain', 'iris', '--data', requestFile, '--baseline', 'zeros']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^method:\s+kernel-shap \(exact, 4 features\)$/m);
    expect(run.stdout).toMatch(/^cost:\s+16 evaluations, [\d.]+ ms$/m);
    const bars = run.stdout.split('\n').filter((line) => /^input\[\d\]/.test(line));
    expect(bars).toHaveLength(4);
    const sizes = bars.map((line) => Math.abs(Number(line.split(/\s+/)[1])));
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
    expect(bars[0]).toMatch(/[█░]{30}$/);
  });

  it('prints the server answer with --json, options merged into its parameters', async () => {
    const run = await maas([
      'explain',
      'iris',
      '--version',
      '2',
      '--data',
      requestFile,
      '--method',
      'occlusion',
      '--target',
      '1',
      '--json',
    ]);
    expect(run.code).toBe(0);
    const body = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(body).toMatchObject({ model_version: '2', method: 'occlusion', target: 1 });
  });

  it('fails with the server reason on a bad parameter', async () => {
    const run = await maas(['explain', 'iris', '--data', requestFile, '--window', '9']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/from 1 to its dim/);
  });
});
