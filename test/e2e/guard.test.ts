import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  healthyModel,
  inferBody,
  lookupModel,
  sampleRow,
  slowModel,
} from '../../local/guard/demo-models.ts';
import type { AlarmTransition } from '../../local/guard/index.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { guardSettings } from '../../src/guard/index.ts';
import { keys, type Registry } from '../../src/registry/index.ts';
import { normalizeEtag } from '../../src/storage/index.ts';
import { mulberry32 } from '../../src/util/index.ts';
import { stackRegistry } from '../support/local-s3.ts';
import { canaryBound, trafficUntilRollback, waitFor } from '../support/traffic.ts';

/**
 * The control loop on `npm start`'s stack, end to end: uploads through the bucket, ingest on
 * the ObjectCreated events, predict in worker threads, the guard reading their EMF lines (on
 * 2-second periods: CloudWatch's minutes, 30 times faster) and rolling back through the rollback
 * handler, `maas history` reading the result. Nobody touches aliases.json but the platform.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WEIGHT = 0.1;

let home: string;
let stack: LocalStack;
let registry: Registry;
let destroyClient: () => void;
const transitions: AlarmTransition[] = [];

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'maas-guard-e2e-'));
  stack = await startLocalStack({
    home: join(home, 'stack'),
    s3Port: 0,
    bucket: 'maas-models',
    httpPort: 0,
    workers: 2,
    env: {
      MAAS_ALIAS_TTL_MS: '200',
      MAAS_BAKE_MINUTES: '60',
      POWERTOOLS_DEV: 'false',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    },
    ingest: { onOutput: () => {} },
    onApiOutput: () => {},
    guard: {
      settings: guardSettings({
        MAAS_GUARD_TIME_SCALE: String(1 / 30),
        MAAS_GUARD_MIN_REQUESTS: '5',
        MAAS_ALARM_THRESHOLDS: '{"latency": 40}',
        // the schedule re-judges every watched version every 2 s
        MAAS_PROMOTE_EVERY_MINUTES: '1',
      }),
      logger: new Logger({ logLevel: 'SILENT' }),
      onAlarm: (transition) => transitions.push(transition),
    },
  });
  ({ registry, destroy: destroyClient } = stackRegistry(stack));
});

afterAll(async () => {
  destroyClient?.();
  await stack?.close();
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

/** Uploads samples then the model, as `maas push` does, and waits for ingest to register it. */
async function upload(model: string, file: string, bytes: Uint8Array): Promise<number> {
  const key = keys.incomingModel(model, file);
  const random = mulberry32(bytes.byteLength);
  const samples = [1, 2, 3].map(() => JSON.parse(inferBody(sampleRow(random))));
  await registry.store.put(keys.samplesFor(key), JSON.stringify(samples), {
    contentType: 'application/json',
  });
  const { etag } = await registry.store.put(key, bytes, {
    contentType: 'application/octet-stream',
    metadata: { 'maas-quantize': 'off' },
  });
  const upload = { sourceKey: key, etag: normalizeEtag(etag) };
  let version: number | undefined;
  await waitFor(
    `ingest of ${key}`,
    async () => {
      const outcome = await registry.findUploadOutcome(model, upload);
      if (outcome?.event === 'rejected') throw new Error(`${key} rejected: ${outcome.reason}`);
      version = outcome?.version;
      return outcome !== undefined;
    },
    30_000,
    200,
  );
  if (version === undefined) throw new Error(`${key} registered without a version`);
  return version;
}

const maasHistory = (model: string): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [
        join(ROOT, 'cli/bin.js'),
        '--endpoint',
        stack.urls.s3,
        '--bucket',
        stack.bucket,
        'history',
        model,
      ],
      { cwd: ROOT, env: process.env },
      (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(stderr))),
    );
  });

/**
 * v1 healthy in production, v2 (`bad`) through ingest as a 10 % candidate, then steady real
 * traffic until the guard has rolled v2 back and every answer comes from v1 again.
 */
async function episode(model: string, bad: Uint8Array) {
  expect(await upload(model, 'v1.onnx', healthyModel())).toBe(1);
  expect(await upload(model, 'v2.onnx', bad)).toBe(2);
  expect((await registry.getAliases(model))?.aliases).toMatchObject({
    production: 1,
    candidate: { version: 2, weight: WEIGHT },
  });
  const { during, after } = await trafficUntilRollback({
    url: stack.urls.api,
    model,
    registry,
    random: mulberry32(7),
  });
  return { during, after, history: await maasHistory(model) };
}

describe('the guard on the local stack', () => {
  it('rolls back a candidate that fails on real traffic without a human step', {
    timeout: 180_000,
  }, async () => {
    const { during, after, history } = await episode('flaky', lookupModel());

    const failed = during.filter((s) => s.status !== 200).length;
    const fromCandidate = during.filter((s) => s.version === 2).length;
    const bound = canaryBound(during.length, WEIGHT);
    console.info(
      `errors: ${failed} of ${during.length} client requests failed during the episode; the candidate served ${fromCandidate} (bound at ${WEIGHT * 100} %: ${bound})`,
    );
    expect(failed).toBeGreaterThan(0);
    expect(failed).toBeLessThanOrEqual(fromCandidate);
    expect(fromCandidate).toBeLessThanOrEqual(bound);
    expect(after.map((s) => `${s.status} v${s.version}`)).toEqual(after.map(() => '200 v1'));
    expect(history).toMatch(
      /rolled-back\s+v2\s+(guard|promote)\s+maas-guard-model-errors: \d of the last 5 periods/,
    );
    expect(transitions.some((t) => t.model === 'flaky' && t.rule === 'model-errors')).toBe(true);
  });

  it('rolls back a candidate that is slow on real traffic', { timeout: 180_000 }, async () => {
    const { during, after, history } = await episode('sluggish', slowModel());

    const fromCandidate = during.filter((s) => s.version === 2).length;
    const bound = canaryBound(during.length, WEIGHT);
    console.info(
      `latency: ${fromCandidate} of ${during.length} client requests were served by the slow candidate (bound at ${WEIGHT * 100} %: ${bound})`,
    );
    expect(fromCandidate).toBeGreaterThan(0);
    expect(fromCandidate).toBeLessThanOrEqual(bound);
    expect(after.map((s) => `${s.status} v${s.version}`)).toEqual(after.map(() => '200 v1'));
    expect(history).toMatch(
      /rolled-back\s+v2\s+(guard|promote)\s+maas-guard-(latency|slow): \d of the last 5 periods/,
    );
    expect((await registry.getAliases('sluggish'))?.aliases).toMatchObject({
      production: 1,
      rolledBack: [2],
    });
  });
});
