import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  hangingModel,
  healthyModel,
  inferBody,
  lookupModel,
  sampleRow,
  trafficRow,
  uniformlySlowModel,
} from '../../local/guard/demo-models.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { guardSettings } from '../../src/guard/index.ts';
import { type HistoryRecord, keys, type Registry } from '../../src/registry/index.ts';
import { normalizeEtag } from '../../src/storage/index.ts';
import { mulberry32 } from '../../src/util/index.ts';
import { emfNamedModel } from '../support/forged-models.ts';
import { stackRegistry } from '../support/local-s3.ts';
import { waitFor } from '../support/traffic.ts';

/**
 * The guard's integrity on `npm start`'s stack, attacked as a client would attack it: uploads
 * through the bucket and ingest, predict in handler instances, the guard reading their EMF lines
 * on 2-second periods (CloudWatch's minutes, 30 times faster), its alarm triggers and its promote
 * schedule (every 2 s) acting through the real rollback and promote handlers.
 *
 * Time-outs: terminating a handler instance in the middle of an onnxruntime run aborts the whole
 * process today (worker threads; the local API is moving to child processes). So the "hanging"
 * candidate here runs for seconds, under the invocation time-out, and the guard is told that a
 * request may answer at most 1.5 s after its period ends (`MAAS_GUARD_SETTLE_SECONDS`, which a
 * real deployment sets to the predict time-out plus CloudWatch's delay): while it runs on, it is
 * unfinished to the guard, exactly as a timed-out request.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCALE = 1 / 30;

let home: string;
let stack: LocalStack;
let registry: Registry;
let destroyClient: () => void;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'maas-guard-integrity-'));
  stack = await startLocalStack({
    home: join(home, 'stack'),
    s3Port: 0,
    bucket: 'maas-models',
    httpPort: 0,
    workers: 4,
    env: {
      MAAS_ALIAS_TTL_MS: '200',
      // 20 s of bake; the watch window is 60 minutes × SCALE = 2 minutes
      MAAS_BAKE_MINUTES: String(20 / 60),
      MAAS_GUARD_TIME_SCALE: String(SCALE),
      MAAS_INVOKE_TIMEOUT_MS: '60000',
      POWERTOOLS_DEV: 'false',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    },
    ingest: { onOutput: () => {} },
    onApiOutput: () => {},
    guard: {
      settings: guardSettings(
        {
          MAAS_GUARD_TIME_SCALE: String(SCALE),
          MAAS_GUARD_MIN_REQUESTS: '5',
          MAAS_GUARD_SETTLE_SECONDS: '1.5',
          MAAS_GUARD_MIN_EVIDENCE: '20',
          MAAS_PROMOTE_EVERY_MINUTES: '1',
        },
        // 2 cores run at most 2 of the hanging candidate's runs at once: fewer started per period
        { overrides: { slow: { minRequests: 2 } } },
      ),
      logger: new Logger({ logLevel: 'SILENT' }),
    },
  });
  ({ registry, destroy: destroyClient } = stackRegistry(stack));
});

afterAll(async () => {
  for (const traffic of background) await traffic.stop();
  destroyClient?.();
  await stack?.close();
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

/** Uploads samples then the model, as `maas push` does, and waits for ingest's outcome. */
async function upload(
  model: string,
  file: string,
  bytes: Uint8Array,
  metadata: Record<string, string> = {},
): Promise<HistoryRecord> {
  const key = keys.incomingModel(model, file);
  const random = mulberry32(bytes.byteLength);
  const samples = [1, 2, 3].map(() => JSON.parse(inferBody(sampleRow(random))));
  await registry.store.put(keys.samplesFor(key), JSON.stringify(samples), {
    contentType: 'application/json',
  });
  const { etag } = await registry.store.put(key, bytes, {
    contentType: 'application/octet-stream',
    metadata: { 'maas-quantize': 'off', ...metadata },
  });
  const ref = { sourceKey: key, etag: normalizeEtag(etag) };
  let outcome: HistoryRecord | undefined;
  await waitFor(
    `ingest of ${key}`,
    async () => {
      outcome = await registry.findUploadOutcome(model, ref);
      return outcome !== undefined;
    },
    180_000,
    200,
  );
  if (outcome === undefined) throw new Error(`no outcome for ${key}`);
  return outcome;
}

/** v1 as production, then v2 as a candidate at `weight` or promoted at once. */
async function versions(
  model: string,
  v1: Uint8Array,
  v2: Uint8Array,
  v2Policy: { promote: 'canary'; weight: number } | { promote: 'now' },
): Promise<void> {
  expect((await upload(model, 'v1.onnx', v1)).event).toBe('registered');
  const metadata: Record<string, string> =
    v2Policy.promote === 'now'
      ? { 'maas-promote': 'now' }
      : { 'maas-promote': 'canary', 'maas-canary-weight': String(v2Policy.weight) };
  expect((await upload(model, 'v2.onnx', v2, metadata)).event).toBe('registered');
}

const aliasesOf = async (model: string) => (await registry.getAliases(model))?.aliases;

interface Answer {
  status: number;
  version?: number;
  variant?: string;
}

/** Clients each sending one request, reading the answer, pausing, until stopped. */
function drive(options: {
  model: string;
  clients: number;
  pauseMs: number;
  /** a path suffix (`infer` or `versions/2/infer`) and the row of one request */
  next: () => { route: string; row: number[] };
}): { answers: Answer[]; stop(): Promise<void> } {
  const answers: Answer[] = [];
  let running = true;
  const client = async (): Promise<void> => {
    while (running) {
      const { route, row } = options.next();
      try {
        const res = await fetch(`${stack.urls.api}/v2/models/${options.model}/${route}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: inferBody(row),
        });
        await res.arrayBuffer();
        const version = res.headers.get('x-maas-model-version');
        const variant = res.headers.get('x-maas-variant');
        answers.push({
          status: res.status,
          ...(version === null ? {} : { version: Number(version) }),
          ...(variant === null ? {} : { variant }),
        });
      } catch {
        answers.push({ status: 0 });
      }
      await sleep(options.pauseMs);
    }
  };
  const clients = Array.from({ length: options.clients }, client);
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(clients);
    },
  };
}

const background: { stop(): Promise<void> }[] = [];

const rows = (random: () => number, low: number, high: number): number[] =>
  Array.from({ length: 4 }, () => low + random() * (high - low));

/** Inputs the lookup model refuses (an index past its 4-row table), on every version alike. */
const failing = (random: () => number) => rows(random, 4, 6);
/** Inputs every version answers. */
const answerable = (random: () => number) => rows(random, 0, 3.9);

const rolledBack = (model: string, version: number) => async () =>
  (await aliasesOf(model))?.rolledBack.includes(version) ?? false;

const rollbackRecord = async (model: string) =>
  (await registry.history(model)).find((r) => r.event === 'rolled-back');

const maas = (...args: string[]): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(ROOT, 'cli/bin.js'), '--endpoint', stack.urls.s3, '--bucket', stack.bucket, ...args],
      { cwd: ROOT, env: process.env },
      (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(stderr))),
    );
  });

describe('the guard cannot be forged, starved or steered', () => {
  it('starts the long scenarios: an attacked twin candidate, an attacked twin production, an idle candidate', {
    timeout: 240_000,
  }, async () => {
    await Promise.all([
      versions('twin', lookupModel(), lookupModel(), { promote: 'canary', weight: 0.5 }),
      versions('twin-prod', lookupModel(), lookupModel(), { promote: 'now' }),
      versions('idle', healthyModel(), healthyModel(), { promote: 'canary', weight: 0.1 }),
    ]);
    const random = mulberry32(1);
    // half the routed requests are an attacker's failing inputs, plus failing requests pinned
    // to the candidate: identical bytes on both versions, so nothing here is the candidate's fault
    background.push(
      drive({
        model: 'twin',
        clients: 2,
        pauseMs: 20,
        next: () => ({
          route: 'infer',
          row: random() < 0.5 ? failing(random) : answerable(random),
        }),
      }),
      drive({
        model: 'twin',
        clients: 1,
        pauseMs: 10,
        next: () => ({ route: 'versions/2/infer', row: failing(random) }),
      }),
      drive({
        model: 'twin-prod',
        clients: 2,
        pauseMs: 20,
        next: () => ({
          route: 'infer',
          row: random() < 0.5 ? failing(random) : answerable(random),
        }),
      }),
    );
    expect((await aliasesOf('twin'))?.candidate?.version).toBe(2);
    expect((await aliasesOf('twin-prod'))?.production).toBe(2);
  });

  it('refuses at upload a model whose node name carries an EMF document', {
    timeout: 240_000,
  }, async () => {
    const outcome = await upload('forged', 'v1.onnx', emfNamedModel('victim'));
    expect(outcome).toMatchObject({ event: 'rejected' });
    expect(outcome.reason).toMatch(/control character/);
    expect(outcome.details).toMatchObject({ code: 'ControlCharacterInName' });
  });

  it('rolls back a production version promoted at once that fails where the previous one answers', {
    timeout: 240_000,
  }, async () => {
    await versions('regress', healthyModel(), lookupModel(), { promote: 'now' });
    const random = mulberry32(3);
    const traffic = drive({
      model: 'regress',
      clients: 3,
      pauseMs: 20,
      next: () => ({ route: 'infer', row: trafficRow(random) }),
    });
    try {
      await waitFor('the guard to revert regress to v1', rolledBack('regress', 2), 120_000, 200);
    } finally {
      await traffic.stop();
    }
    expect(await aliasesOf('regress')).toMatchObject({ production: 1, rolledBack: [2] });
    const record = await rollbackRecord('regress');
    expect(record?.details).toMatchObject({ action: 'reverted-production', restored: 1 });
    expect(record?.reason).toMatch(/counting only failures v1 answers/);
  });

  it('rolls back a bad candidate however many good requests are pinned to it', {
    timeout: 240_000,
  }, async () => {
    await versions('dilute', healthyModel(), lookupModel(), { promote: 'canary', weight: 0.5 });
    const random = mulberry32(4);
    const routed = drive({
      model: 'dilute',
      clients: 3,
      pauseMs: 20,
      next: () => ({ route: 'infer', row: trafficRow(random) }),
    });
    const pinned = drive({
      model: 'dilute',
      clients: 2,
      pauseMs: 0,
      next: () => ({ route: 'versions/2/infer', row: answerable(random) }),
    });
    try {
      await waitFor(
        'the guard to drop the dilute candidate',
        rolledBack('dilute', 2),
        120_000,
        200,
      );
    } finally {
      await Promise.all([routed.stop(), pinned.stop()]);
    }
    const pinnedOk = pinned.answers.filter((a) => a.status === 200).length;
    const routedToCandidate = routed.answers.filter((a) => a.variant === 'candidate').length;
    console.info(
      `dilution: ${pinnedOk} good pinned requests against ${routedToCandidate} routed to the candidate`,
    );
    expect(pinnedOk).toBeGreaterThan(routedToCandidate);
    expect((await rollbackRecord('dilute'))?.reason).toMatch(/model-errors against production v1/);
  });

  it('promotes the attacked twin candidate once baked, and never rolls back the attacked twin production', {
    timeout: 90_000,
  }, async () => {
    try {
      await waitFor(
        'the twin candidate to be promoted',
        async () => (await aliasesOf('twin'))?.production === 2,
        120_000,
        250,
      );
    } catch (err) {
      console.info(
        JSON.stringify(
          { aliases: await aliasesOf('twin'), history: await registry.history('twin') },
          null,
          1,
        ).slice(0, 6000),
      );
      throw err;
    }
    // the attacked production has been watched for the whole run so far
    expect(await aliasesOf('twin-prod')).toMatchObject({ production: 2, rolledBack: [] });
    expect(await aliasesOf('twin')).toMatchObject({ rolledBack: [] });
    const promotedRecord = (await registry.history('twin')).find(
      (r) => r.event === 'promoted' && r.version === 2,
    );
    expect(promotedRecord?.reason).toMatch(/its rules OK over \d+ routed requests/);
    const figures = await stack.guard.metrics.periods(
      'twin-prod',
      2,
      { start: 0, end: Date.now() + 1000 },
      3600,
    );
    const checks = figures.reduce((sum, p) => sum + p.shadowChecks, 0);
    const regressions = figures.reduce((sum, p) => sum + p.shadowRegressions, 0);
    const routed = figures.reduce((sum, p) => sum + p.completed, 0);
    const failed = figures.reduce((sum, p) => sum + p.errors, 0);
    console.info(
      `shadow: ${checks} of ${failed} failures of ${routed} routed requests re-run on v1, ${regressions} answered there`,
    );
    expect(checks).toBeGreaterThan(0);
    expect(checks).toBeLessThanOrEqual(Math.ceil(0.1 * routed) + 4 * 5);
    expect(regressions).toBe(0);
  });

  it('keeps a baked candidate that got no traffic a candidate, and says why', {
    timeout: 150_000,
  }, async () => {
    await waitFor(
      'the idle candidate to be held',
      async () => (await aliasesOf('idle'))?.candidate?.held !== undefined,
      120_000,
      250,
    );
    expect(await aliasesOf('idle')).toMatchObject({
      production: 1,
      candidate: { version: 2, held: { code: 'no-traffic' } },
    });
    expect(await maas('show', 'idle', '2')).toMatch(
      /held:\s+baked until .* served 0 routed requests/,
    );
    expect(await maas('history', 'idle')).toMatch(/candidate\s+v2\s+promote/);
  });
  it('stops the attackers', async () => {
    for (const traffic of background.splice(0)) await traffic.stop();
  });

  it('rolls back a candidate that hangs on real traffic, while production keeps answering', {
    timeout: 120_000,
  }, async () => {
    await versions('hang', healthyModel(), hangingModel(50_000), {
      promote: 'canary',
      weight: 0.5,
    });
    const random = mulberry32(5);
    const traffic = drive({
      model: 'hang',
      clients: 4,
      pauseMs: 50,
      next: () => ({ route: 'infer', row: rows(random, 5, 6) }),
    });
    try {
      await waitFor('the guard to drop the hanging candidate', rolledBack('hang', 2), 120_000, 200);
    } catch (err) {
      const range = { start: Date.now() - 8000, end: Date.now() };
      console.info(
        JSON.stringify({
          v1: await stack.guard.metrics.periods('hang', 1, range, 1),
          v2: await stack.guard.metrics.periods('hang', 2, range, 1),
          aliases: await aliasesOf('hang'),
          answers: traffic.answers.slice(-20),
        }),
      );
      throw err;
    } finally {
      await traffic.stop();
    }
    const record = await rollbackRecord('hang');
    console.info(`hang: ${record?.reason}`);
    // unfinished when judged while its runs went on, else their median once they ended
    expect(record?.reason).toMatch(
      /slow against production v1 \[(unfinished|\d+ ms) over \d+ requests/,
    );
    expect((await aliasesOf('hang'))?.production).toBe(1);
    const production = traffic.answers.filter((a) => a.variant === 'production');
    expect(production.length).toBeGreaterThan(0);
    expect(production.every((a) => a.status === 200)).toBe(true);
    // the stack keeps serving: every answer from now on is v1's
    const after = await Promise.all(
      Array.from({ length: 10 }, () =>
        fetch(`${stack.urls.api}/v2/models/hang/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: inferBody(rows(random, 5, 6)),
        }).then(async (res) => `${res.status} v${res.headers.get('x-maas-model-version')}`),
      ),
    );
    expect(after).toEqual(after.map(() => '200 v1'));
  });

  it('rolls back a candidate uniformly 10 times slower than production', {
    timeout: 120_000,
  }, async () => {
    // 60,000 trips, about half a second: 2 shared cores also slow production while it runs
    await versions('sloth', healthyModel(), uniformlySlowModel(60_000), {
      promote: 'canary',
      weight: 0.3,
    });
    const random = mulberry32(6);
    const traffic = drive({
      model: 'sloth',
      clients: 3,
      pauseMs: 20,
      next: () => ({ route: 'infer', row: answerable(random) }),
    });
    try {
      await waitFor('the guard to drop the slow candidate', rolledBack('sloth', 2), 120_000, 200);
    } finally {
      await traffic.stop();
    }
    expect((await rollbackRecord('sloth'))?.reason).toMatch(/slow against production v1/);
    expect(traffic.answers.every((a) => a.status === 200)).toBe(true);
  });
});
