import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthyModel, lookupModel, slowModel } from '../../../local/guard/demo-models.ts';
import {
  type AlarmTransition,
  type LocalGuard,
  startLocalGuard,
} from '../../../local/guard/index.ts';
import { type LocalApi, startLocalApi } from '../../../local/http/index.ts';
import { guardSettings } from '../../../src/guard/index.ts';
import { Registry } from '../../../src/registry/index.ts';
import { mulberry32 } from '../../../src/util/index.ts';
import { candidateOf } from '../../support/guard-fixtures.ts';
import { s3Env, startTestS3, type TestS3 } from '../../support/local-s3.ts';
import { registerVersion } from '../../support/registry.ts';
import { canaryBound, trafficUntilRollback } from '../../support/traffic.ts';

/**
 * The local control loop without ingest: the real predict handler in worker threads over the
 * local S3, its EMF lines read by the local guard, which applies the rules on 2-second periods
 * and invokes the real rollback handler. Versions are registered directly.
 */

const WEIGHT = 0.1;
let s3: TestS3;
let registry: Registry;
let tmp: string;
let api: LocalApi;
let guard: LocalGuard;
const transitions: AlarmTransition[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
  tmp = await mkdtemp(join(tmpdir(), 'maas-guard-'));
  guard = startLocalGuard({
    registry,
    settings: guardSettings({
      MAAS_GUARD_TIME_SCALE: String(1 / 30),
      MAAS_GUARD_MIN_REQUESTS: '5',
      MAAS_ALARM_THRESHOLDS: '{"latency": 40}',
    }),
    // the schedule re-judges every watched version: CloudWatch (and this evaluator) invoke
    // rollback once per alarm transition, which may come before the rule can be confirmed
    promoteEveryMs: 1_000,
    logger: new Logger({ logLevel: 'SILENT' }),
    onAlarm: (transition) => transitions.push(transition),
  });
  api = await startLocalApi({
    port: 0,
    workers: 2,
    env: {
      ...s3Env(s3.s3),
      MAAS_TMP_CACHE_DIR: tmp,
      MAAS_ALIAS_TTL_MS: '200',
      POWERTOOLS_DEV: 'false',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      ...guard.handlerEnv,
    },
    onOutput: (line) => guard.onOutput(line),
  });
});

afterAll(async () => {
  await api?.close();
  await guard?.close();
  await s3?.cleanup();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

/**
 * v1 production, `bad` as candidate at 10 %, steady traffic until the guard has rolled the
 * candidate back and every answer comes from v1 again.
 */
async function episode(model: string, bad: Uint8Array) {
  await registerVersion(registry, model, healthyModel());
  await registerVersion(registry, model, bad);
  await registry.updateAliases(model, () => ({
    model,
    production: 1,
    candidate: candidateOf(2, new Date(Date.now() + 3_600_000), WEIGHT),
    knownGood: [],
    rolledBack: [],
    updatedAt: new Date().toISOString(),
  }));
  return trafficUntilRollback({
    url: api.url,
    model,
    registry,
    random: mulberry32(model.length),
  });
}

describe('the local guard', () => {
  it('rolls back a candidate that fails on real traffic, with no human step', {
    timeout: 180_000,
  }, async () => {
    const { during, after } = await episode('errs', lookupModel());

    const failed = during.filter((s) => s.status !== 200).length;
    const fromCandidate = during.filter((s) => s.version === 2).length;
    console.info(
      `error episode: ${during.length} requests, ${fromCandidate} to the candidate, ${failed} failed (bound ${canaryBound(during.length, WEIGHT)})`,
    );
    expect(failed).toBeGreaterThan(0);
    expect(failed).toBeLessThanOrEqual(fromCandidate);
    expect(fromCandidate).toBeLessThanOrEqual(canaryBound(during.length, WEIGHT));
    expect(after.map((s) => `${s.status} v${s.version}`)).toEqual(after.map(() => '200 v1'));
    const [record] = (await registry.history('errs')).filter((r) => r.event === 'rolled-back');
    expect(record).toMatchObject({
      version: 2,
      actor: expect.stringMatching(/^(guard|promote)$/),
      details: { action: 'dropped-candidate', alarm: { name: 'maas-guard-model-errors' } },
    });
    expect(
      transitions.some(
        (t) => t.model === 'errs' && t.state === 'ALARM' && t.rule === 'model-errors',
      ),
    ).toBe(true);
  });

  it('rolls back a candidate that is slow on real traffic', { timeout: 180_000 }, async () => {
    const { during, after } = await episode('slow', slowModel());

    const fromCandidate = during.filter((s) => s.version === 2).length;
    console.info(
      `latency episode: ${during.length} requests, ${fromCandidate} served slowly by the candidate (bound ${canaryBound(during.length, WEIGHT)})`,
    );
    expect(fromCandidate).toBeLessThanOrEqual(canaryBound(during.length, WEIGHT));
    expect(after.map((s) => `${s.status} v${s.version}`)).toEqual(after.map(() => '200 v1'));
    const [record] = (await registry.history('slow')).filter((r) => r.event === 'rolled-back');
    // tail latency, or a median ten times production's: whichever rule holds first
    expect(record).toMatchObject({
      version: 2,
      details: { alarm: { name: expect.stringMatching(/^maas-guard-(latency|slow)$/) } },
    });
    expect((await registry.getAliases('slow'))?.aliases).toMatchObject({
      production: 1,
      rolledBack: [2],
    });
  });
});
