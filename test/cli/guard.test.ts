import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../../src/registry/index.ts';
import { candidateOf, modelWith } from '../support/guard-fixtures.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

let t: TestS3;
let registry: Registry;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `maas ...` as a user runs it: a child process on cli/main.ts through tsx. */
function maas(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(root, 'cli/main.ts'), ...args],
      {
        cwd: root,
        env: { ...process.env, MAAS_S3_PORT: String(t.s3.port), MAAS_BUCKET: t.s3.bucket },
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  t = await startTestS3();
  registry = new Registry(t.store);
  await modelWith(registry, 'iris', 3, {
    production: 2,
    knownGood: [1],
    candidate: candidateOf(3, new Date(Date.now() + 3_600_000)),
    promotedAt: new Date(Date.now() - 86_400_000).toISOString(),
  });
});
afterAll(async () => {
  await t?.cleanup();
});

describe('maas rollback and maas promote', () => {
  it('rolls back the candidate, then production, then says there is nothing left', async () => {
    const first = await maas('rollback', 'iris');
    expect(first).toMatchObject({
      code: 0,
      stdout: 'iris: candidate v3 dropped and marked rolled back\n',
    });

    const second = await maas('rollback', 'iris', '--json');
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({
      changed: true,
      action: 'reverted-production',
      version: 2,
      restored: 1,
      aliases: { production: 1, rolledBack: [3, 2] },
    });

    const third = await maas('rollback', 'iris');
    expect(third.code).toBe(1);
    expect(third.stderr).toMatch(
      /model "iris" has nothing to roll back: .*; name the version to serve with `maas rollback iris --to VERSION`/,
    );
  });

  it('promotes a rolled-back version by hand and rolls back to a named one, with history', async () => {
    const promoted = await maas('promote', 'iris', '3');
    expect(promoted).toMatchObject({ code: 0, stdout: 'iris: v3 is production (was v1)\n' });

    const back = await maas('rollback', 'iris', '--to', '1');
    expect(back).toMatchObject({ code: 0, stdout: 'iris: v1 is production (v3 rolled back)\n' });

    const history = await maas('history', 'iris', '--json');
    const events = (JSON.parse(history.stdout).history as { event: string; reason?: string }[]).map(
      (r) => `${r.event}: ${r.reason}`,
    );
    expect(events).toEqual([
      'rolled-back: maas rollback: rolled back by hand',
      'rolled-back: maas rollback: rolled back by hand',
      'promoted: manual promote, overriding an earlier rollback',
      'rolled-back: manual rollback to version 1',
    ]);
  });

  it('refuses versions that do not exist or are not numbers', async () => {
    const missing = await maas('promote', 'iris', '9');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/version 9 of model "iris" does not exist/);
    // a mistyped name is "does not exist", not "has nothing to roll back" (attack finding)
    const typo = await maas('rollback', 'irsi');
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/model "irsi" does not exist; list the models/);
    expect(typo.stderr).not.toMatch(/no aliases/);
    const bad = await maas('rollback', 'iris', '--to', 'latest');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--to must be a positive integer, got "latest"/);
  });
});
