import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readStackInfo } from '../../local/stack-info.ts';
import { ensureExampleModels } from '../../models/generate.ts';
import type { Claim } from '../../src/ingest/index.ts';
import { keys, Registry } from '../../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../../src/storage/s3.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY = 'Ctrl-C stops everything.';

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<unknown>;
}

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
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const deadline = Date.now() + 150_000;
  while (!text.includes(READY)) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${text}`);
    if (Date.now() > deadline) throw new Error(`npm start did not get ready:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, output: () => text, exited };
};

const registryOf = (home: string) => {
  const info = readStackInfo(home)?.info;
  if (info === undefined) throw new Error(`no stack.json in ${home}`);
  const client = createS3Client({
    endpoint: info.s3,
    region: info.region,
    credentials: info.credentials,
  });
  return { registry: new Registry(new S3ObjectStore({ bucket: info.bucket, client })), client };
};

describe('a local stack killed in the middle of an ingest', () => {
  let home: string;
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('delivers the upload again on restart, and registers it', async () => {
    home = await mkdtemp(join(tmpdir(), 'maas-restart-'));
    const first = await start(home);
    children.push(first.child);
    const { encoder } = await ensureExampleModels();
    const { registry, client } = registryOf(home);
    const key = keys.incomingModel('crashy', 'encoder.onnx');
    try {
      await registry.store.put(keys.samplesFor(key), await readFile(encoder.samplesPath));
      await registry.store.put(key, await readFile(encoder.path));
      // Kill -9 once ingest holds the claim: the stack dies with the upload half done.
      const prefix = `${keys.modelPrefix('crashy')}uploads/`;
      for (let held = false; !held; await new Promise((r) => setTimeout(r, 50))) {
        const { keys: claims } = await registry.store.list(prefix);
        for (const claim of claims) {
          const body = await registry.store.get(claim.key);
          const parsed = JSON.parse(new TextDecoder().decode(body?.body)) as Claim;
          held ||= parsed.state === 'running';
        }
      }
      first.child.kill('SIGKILL');
      await first.exited;
    } finally {
      client.destroy();
    }
    expect(readStackInfo(home)?.live).toBe(false);

    const second = await start(home);
    children.push(second.child);
    expect(second.output()).toContain(`${key} has no outcome yet: delivered to ingest again`);
    const again = registryOf(home);
    try {
      let outcome: Awaited<ReturnType<Registry['findUploadOutcome']>>;
      for (const deadline = Date.now() + 120_000; outcome === undefined; ) {
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 250));
        outcome = await again.registry.findUploadOutcome('crashy', {
          sourceKey: key,
          etag: (await again.registry.store.head(key)).etag,
        });
      }
      expect(outcome).toMatchObject({ event: 'registered', version: 1 });
    } finally {
      again.client.destroy();
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 300_000);
});
