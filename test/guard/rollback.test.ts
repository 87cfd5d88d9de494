import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SnsNotifier } from '../../src/guard/aws.ts';
import {
  type HealthReport,
  NothingToRollBackError,
  promoteDue,
  promoteVersion,
  type RollbackRequest,
  rollback,
  rollbackLatest,
  rollbackTo,
} from '../../src/guard/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { candidateOf, expectConsistent, modelWith } from '../support/guard-fixtures.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';

let s3: TestS3;
let registry: Registry;
const sns = mockClient(SNSClient);

beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
});
afterAll(async () => {
  sns.restore();
  await s3?.cleanup();
});
afterEach(() => {
  sns.reset();
});

const now = new Date('2026-06-01T12:00:00.000Z');
const clock = () => now;
const minutes = (n: number): Date => new Date(now.getTime() + n * 60_000);
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:maas-alerts';

const alarmOn = (model: string, version?: number): RollbackRequest => ({
  model,
  ...(version === undefined ? {} : { version }),
  alarm: {
    name: 'maas-guard-model-errors',
    rule: 'model-errors',
    reason: '3 of the last 5 periods of 60 s had Average ModelErrors above 5.0 %',
    metrics: { metric: 'ModelErrors', threshold: 0.05, datapoints: [{ value: 0.4, requests: 80 }] },
  },
});

const aliasesOf = async (model: string) => {
  const snapshot = await registry.getAliases(model);
  if (snapshot === undefined) throw new Error(`no aliases for ${model}`);
  return snapshot.aliases;
};

const healthy = async (model: string, version: number): Promise<HealthReport> => ({
  model,
  version,
  state: 'OK',
  evaluations: [],
  baseline: { kind: 'none' },
  started: 0,
});

describe('rollback', () => {
  it('rolls back once when the same alarm is delivered three times', async () => {
    await modelWith(registry, 'thrice', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(30)),
    });
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const notifier = new SnsNotifier(new SNSClient({ region: 'us-east-1' }), TOPIC);

    const outcomes = await Promise.all(
      [1, 2, 3].map(() => rollback(alarmOn('thrice', 2), registry, { clock, notifier })),
    );
    const later = await rollback(alarmOn('thrice', 2), registry, { clock, notifier });

    expect(outcomes.filter((o) => o.changed)).toHaveLength(1);
    expect([...outcomes, later].filter((o) => !o.changed).map((o) => !o.changed && o.why)).toEqual([
      'already-rolled-back',
      'already-rolled-back',
      'already-rolled-back',
    ]);
    const aliases = await aliasesOf('thrice');
    expect(aliases).toMatchObject({ production: 1, rolledBack: [2] });
    expect(aliases.candidate).toBeUndefined();
    const records = (await registry.history('thrice')).filter((r) => r.event === 'rolled-back');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      version: 2,
      actor: 'guard',
      reason:
        'maas-guard-model-errors: 3 of the last 5 periods of 60 s had Average ModelErrors above 5.0 %',
      details: {
        action: 'dropped-candidate',
        alarm: {
          name: 'maas-guard-model-errors',
          rule: 'model-errors',
          metrics: { metric: 'ModelErrors', threshold: 0.05 },
        },
      },
    });
    const published = sns.commandCalls(PublishCommand);
    expect(published).toHaveLength(1);
    expect(published[0]?.args[0].input).toMatchObject({
      TopicArn: TOPIC,
      Subject: 'maas: thrice v2 rolled back',
      MessageAttributes: { model: { StringValue: 'thrice' }, version: { StringValue: '2' } },
    });
  });

  it('rolls back only the model in alarm', async () => {
    await modelWith(registry, 'only-a', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(30)),
    });
    await modelWith(registry, 'only-b', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(30)),
    });
    const before = await registry.getAliases('only-b');

    await rollback(alarmOn('only-a', 2), registry, { clock });

    expect((await aliasesOf('only-a')).candidate).toBeUndefined();
    expect((await registry.getAliases('only-b'))?.etag).toBe(before?.etag);
  });

  it('reverts production in its watch window to the last known-good version', async () => {
    await modelWith(registry, 'fresh', 3, {
      production: 3,
      knownGood: [1, 2],
      promotedAt: minutes(-10).toISOString(),
    });

    const outcome = await rollback(alarmOn('fresh', 3), registry, { clock });

    expect(outcome).toMatchObject({ changed: true, action: 'reverted-production', restored: 2 });
    expect(await aliasesOf('fresh')).toMatchObject({
      production: 2,
      knownGood: [1],
      rolledBack: [3],
    });
  });

  it('keeps a rollback whose notification failed', async () => {
    await modelWith(registry, 'quiet', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(30)),
    });
    sns.on(PublishCommand).rejects(new Error('topic gone'));
    const failures: unknown[] = [];

    const outcome = await rollback(alarmOn('quiet', 2), registry, {
      clock,
      notifier: new SnsNotifier(new SNSClient({ region: 'us-east-1' }), TOPIC),
      onNotifyError: (err) => failures.push(err),
    });

    expect(outcome.changed).toBe(true);
    expect(failures).toHaveLength(1);
    expect((await aliasesOf('quiet')).rolledBack).toEqual([2]);
  });
});

describe('rollback racing promotion', () => {
  let race: TestS3;
  let raceRegistry: Registry;
  beforeAll(async () => {
    race = await startTestS3();
    raceRegistry = new Registry(race.store, { retry: { baseDelayMs: 2, maxDelayMs: 20 } });
  });
  afterAll(async () => {
    await race?.cleanup();
  });

  it('leaves a consistent aliases.json, with the version in alarm rolled back, every time', async () => {
    const rounds = 24;
    for (let round = 0; round < rounds; round++) {
      const model = `race-${round}`;
      await modelWith(raceRegistry, model, 2, {
        production: 1,
        candidate: candidateOf(2, minutes(-1)),
        promotedAt: minutes(-600).toISOString(),
      });
      // the promote schedule and duplicate alarm deliveries, all at once
      const racers = [
        promoteDue(raceRegistry, healthy, { clock }),
        ...[1, 2, 3].map(() => rollback(alarmOn(model, 2), raceRegistry, { clock })),
      ];
      if (round % 2 === 1) racers.reverse();
      await Promise.all(racers);

      const aliases = (await raceRegistry.getAliases(model))?.aliases;
      if (aliases === undefined) throw new Error(`${model} lost its aliases`);
      expect(expectConsistent(aliases), model).toEqual([]);
      expect(aliases, model).toMatchObject({ production: 1, knownGood: [], rolledBack: [2] });
      expect(aliases.candidate, model).toBeUndefined();
      const history = await raceRegistry.history(model);
      expect(
        history.filter((r) => r.event === 'rolled-back'),
        model,
      ).toHaveLength(1);
      expect(history.filter((r) => r.event === 'promoted').length, model).toBeLessThanOrEqual(1);
    }
  });
});

describe('promoteDue', () => {
  let own: TestS3;
  let ownRegistry: Registry;
  beforeAll(async () => {
    own = await startTestS3();
    ownRegistry = new Registry(own.store);
  });
  afterAll(async () => {
    await own?.cleanup();
  });

  it('promotes a candidate that baked with its alarms OK, holds one in ALARM, waits for the rest', async () => {
    await modelWith(ownRegistry, 'baked', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(-1)),
    });
    await modelWith(ownRegistry, 'baking', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(5)),
    });
    await modelWith(ownRegistry, 'failing', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(-1)),
    });
    await modelWith(ownRegistry, 'retired', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(-1)),
      rolledBack: [2],
    });
    const health = async (model: string, version: number): Promise<HealthReport> => ({
      model,
      version,
      state: model === 'failing' ? 'ALARM' : 'OK',
      evaluations: [],
      baseline: { kind: 'none' },
      started: 0,
    });

    const outcomes = await promoteDue(ownRegistry, health, { clock });

    expect(outcomes.map((o) => [o.model, o.result])).toEqual([
      ['baked', 'promoted'],
      ['failing', 'held'],
    ]);
    expect((await ownRegistry.getAliases('baked'))?.aliases).toMatchObject({
      production: 2,
      knownGood: [1],
      promotedAt: now.toISOString(),
    });
    expect((await ownRegistry.getAliases('baking'))?.aliases.production).toBe(1);
    expect((await ownRegistry.getAliases('retired'))?.aliases.production).toBe(1);
    const [promoted] = (await ownRegistry.history('baked')).filter((r) => r.event === 'promoted');
    expect(promoted).toMatchObject({ version: 2, actor: 'promote', details: { previous: 1 } });
  });

  it('never promotes a version after its rollback', async () => {
    await modelWith(ownRegistry, 'once-bad', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(-1)),
    });
    await rollback(alarmOn('once-bad', 2), ownRegistry, { clock });

    const outcomes = await promoteDue(ownRegistry, healthy, { clock: () => minutes(60) });

    expect(outcomes.filter((o) => o.model === 'once-bad')).toEqual([]);
    expect((await ownRegistry.getAliases('once-bad'))?.aliases).toMatchObject({
      production: 1,
      rolledBack: [2],
    });
  });
});

describe('manual operations', () => {
  it('promotes a rolled-back version by hand, taking it off the rolled-back list', async () => {
    await modelWith(registry, 'override', 2, {
      production: 1,
      candidate: candidateOf(2, minutes(30)),
    });
    await rollback(alarmOn('override', 2), registry, { clock });

    const outcome = await promoteVersion(registry, 'override', 2, { clock });

    expect(outcome).toMatchObject({ changed: true, previous: 1 });
    expect(await aliasesOf('override')).toMatchObject({
      production: 2,
      knownGood: [1],
      rolledBack: [],
      promotedAt: now.toISOString(),
    });
    const [record] = (await registry.history('override')).filter((r) => r.event === 'promoted');
    expect(record).toMatchObject({
      version: 2,
      actor: 'cli',
      reason: 'manual promote, overriding an earlier rollback',
      details: { manual: true, previous: 1 },
    });
    expect((await promoteVersion(registry, 'override', 2, { clock })).changed).toBe(false);
  });

  it('refuses to promote a version that does not exist', async () => {
    await modelWith(registry, 'short', 1, { production: 1 });
    await expect(promoteVersion(registry, 'short', 9)).rejects.toThrow(
      /version 9 of model "short"/,
    );
  });

  it('rolls production back to a named version', async () => {
    await modelWith(registry, 'named', 3, { production: 3, knownGood: [1, 2] });

    const outcome = await rollbackTo(registry, 'named', 1, { clock });

    expect(outcome).toMatchObject({ changed: true, previous: 3 });
    expect(await aliasesOf('named')).toMatchObject({
      production: 1,
      knownGood: [2],
      rolledBack: [3],
    });
    const [record] = (await registry.history('named')).filter((r) => r.event === 'rolled-back');
    expect(record).toMatchObject({
      version: 3,
      reason: 'manual rollback to version 1',
      details: { manual: true, restored: 1 },
    });
  });

  it('undoes the latest change: the candidate first, then production at any age', async () => {
    await modelWith(registry, 'undo', 3, {
      production: 2,
      knownGood: [1],
      candidate: candidateOf(3, minutes(30)),
      promotedAt: minutes(-6000).toISOString(),
    });

    expect(await rollbackLatest(registry, 'undo', { clock })).toMatchObject({
      action: 'dropped-candidate',
      version: 3,
    });
    expect(await rollbackLatest(registry, 'undo', { clock })).toMatchObject({
      action: 'reverted-production',
      version: 2,
      restored: 1,
    });
    await expect(rollbackLatest(registry, 'undo', { clock })).rejects.toThrow(
      NothingToRollBackError,
    );
  });
});
