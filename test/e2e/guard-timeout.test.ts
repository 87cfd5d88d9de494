import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hangingModel, healthyModel } from '../../local/guard/demo-models.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { Registry } from '../../src/registry/index.ts';
import { mulberry32 } from '../../src/util/index.ts';
import { stackRegistry } from '../support/local-s3.ts';
import { registerVersion, setAliases } from '../support/registry.ts';
import { steadyTraffic, waitFor } from '../support/traffic.ts';

/**
 * A candidate whose requests really time out, on the local stack's own guard settings (1-second
 * periods, the settle time derived from the invocation time-out) and two handler instances: the
 * attack that found the `slow` rule blind to it. Each of its runs holds an instance until the
 * time-out kills it, so no period holds three started requests, and none of them ever answers.
 */
let home: string;
let stack: LocalStack;
let registry: Registry;
let destroyClient: () => void;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'maas-guard-timeout-'));
  stack = await startLocalStack({
    home: join(home, 'stack'),
    s3Port: 0,
    bucket: 'maas-models',
    httpPort: 0,
    workers: 2,
    env: {
      MAAS_ALIAS_TTL_MS: '200',
      MAAS_INVOKE_TIMEOUT_MS: '1500',
      POWERTOOLS_DEV: 'false',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    },
    ingest: { onOutput: () => {} },
    onApiOutput: () => {},
    guard: { logger: new Logger({ logLevel: 'SILENT' }) },
  });
  ({ registry, destroy: destroyClient } = stackRegistry(stack));
});

afterAll(async () => {
  destroyClient?.();
  await stack?.close();
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

describe('the guard on the local stack, with a real invocation time-out', () => {
  it('rolls back a candidate whose requests time out, and production serves again', {
    timeout: 150_000,
  }, async () => {
    await registerVersion(registry, 'hang', healthyModel());
    // trips = (peak − 3) × 1e7 on inputs of 5 to 6: tens of seconds, far past the 1.5 s time-out
    await registerVersion(registry, 'hang', hangingModel(10_000_000));
    await setAliases(registry, 'hang', {
      production: 1,
      candidate: {
        version: 2,
        weight: 0.5,
        bakeUntil: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    const random = mulberry32(9);
    const traffic = steadyTraffic({
      url: stack.urls.api,
      model: 'hang',
      clients: 3,
      pauseMs: 50,
      row: () => Array.from({ length: 4 }, () => 5 + random()),
    });
    try {
      await waitFor(
        'the guard to roll back the candidate that times out',
        async () => (await registry.getAliases('hang'))?.aliases.rolledBack.includes(2) ?? false,
        120_000,
        250,
      );
    } finally {
      await traffic.stop();
    }
    expect(traffic.served.some((s) => s.status === 504)).toBe(true);
    const [record] = (await registry.history('hang')).filter((r) => r.event === 'rolled-back');
    expect(record?.reason).toMatch(/slow/);
    const after = await Promise.all(
      Array.from({ length: 6 }, () =>
        fetch(`${stack.urls.api}/v2/models/hang/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [5, 5, 5, 5] }],
          }),
        }).then((res) => `${res.status} v${res.headers.get('x-maas-model-version')}`),
      ),
    );
    expect(after).toEqual(after.map(() => '200 v1'));
  });
});
