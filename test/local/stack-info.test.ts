import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  readStackInfo,
  removeStackInfo,
  type StackInfo,
  StackInfoError,
  stackInfoPath,
  uploadCommands,
  writeStackInfo,
} from '../../local/stack-info.ts';

let home: string;
const info = (overrides: Partial<StackInfo> = {}): StackInfo => ({
  pid: process.pid,
  home,
  api: 'http://127.0.0.1:3400',
  s3: 'http://127.0.0.1:4400',
  bucket: 'maas-models',
  region: 'us-east-1',
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  ...overrides,
});

/** the pid of a process that has exited */
const deadPid = (): number => {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
};

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'maas-stack-info-'));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('stack.json', () => {
  it('reads back what the running stack wrote, as live', async () => {
    await writeStackInfo(info({ console: 'http://127.0.0.1:5400' }));
    expect(readStackInfo(home)).toEqual({
      info: info({ console: 'http://127.0.0.1:5400' }),
      live: true,
    });
  });

  it('is absent before a stack ever ran', () => {
    expect(readStackInfo(home)).toBeUndefined();
  });

  it('recognises a file left by a stack that was killed', async () => {
    await writeStackInfo(info({ pid: deadPid() }));
    expect(readStackInfo(home)?.live).toBe(false);
  });

  it('says which fields are wrong in a damaged file', async () => {
    await writeFile(stackInfoPath(home), JSON.stringify({ ...info(), s3: 4400, credentials: {} }));
    expect(() => readStackInfo(home)).toThrow(StackInfoError);
    expect(() => readStackInfo(home)).toThrow(
      /"s3" must be an http\(s\) URL; "credentials" must be/,
    );
    await writeFile(stackInfoPath(home), '{"pid": 1,');
    expect(() => readStackInfo(home)).toThrow(/stack\.json is not JSON .*delete it and restart/);
  });

  it('is removed on a clean stop, but not when a newer stack replaced it', async () => {
    await writeStackInfo(info({ pid: 1 }));
    await removeStackInfo(home);
    expect(readStackInfo(home)?.info.pid).toBe(1);
    await writeStackInfo(info());
    await removeStackInfo(home);
    expect(readStackInfo(home)).toBeUndefined();
  });

  it('gives upload commands that carry the home, the credentials and the region', () => {
    const [push, aws] = uploadCommands(info({ home: '/tmp/with space' }));
    expect(push).toBe(`MAAS_HOME='/tmp/with space' npx maas push model.onnx --model mymodel`);
    expect(aws).toBe(
      'AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 aws s3 cp model.onnx s3://maas-models/incoming/mymodel/ --endpoint-url http://127.0.0.1:4400',
    );
  });
});
