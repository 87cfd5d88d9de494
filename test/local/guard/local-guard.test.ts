import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAlarmEvent } from '../../../functions/rollback/handler.ts';
import {
  type AlarmTransition,
  contributorAlarmEvent,
  type LocalGuard,
  startLocalGuard,
} from '../../../local/guard/index.ts';
import { alarmDefinitions, guardSettings } from '../../../src/guard/index.ts';
import { Registry } from '../../../src/registry/index.ts';
import { candidateOf, modelWith } from '../../support/guard-fixtures.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';

/** One request's EMF document, shaped as Powertools prints it for the predict handler. */
const emf = (
  at: number,
  model: string,
  version: number,
  variant: string,
  values: { ModelErrors: number; Latency: number },
): string =>
  JSON.stringify({
    _aws: {
      Timestamp: at,
      CloudWatchMetrics: [
        {
          Namespace: 'Maas',
          Dimensions: [
            ['Model', 'Variant'],
            ['Model', 'Version'],
          ],
          Metrics: [
            { Name: 'Requests', Unit: 'Count' },
            { Name: 'ModelErrors', Unit: 'Count' },
            { Name: 'ClientErrors', Unit: 'Count' },
            { Name: 'Latency', Unit: 'Milliseconds' },
          ],
        },
      ],
    },
    Model: model,
    Variant: variant,
    Version: String(version),
    Requests: 1,
    ClientErrors: 0,
    ...values,
  });

let s3: TestS3;
let registry: Registry;
let guard: LocalGuard;
let now = Date.parse('2026-06-01T12:00:00.000Z');
const transitions: AlarmTransition[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
  guard = startLocalGuard({
    registry,
    // one-second periods, ALARM on 3 breaching of the last 5, at least 20 requests each
    settings: guardSettings({ MAAS_GUARD_TIME_SCALE: String(1 / 60) }),
    clock: () => new Date(now),
    evaluateEveryMs: 3_600_000,
    promoteEveryMs: 0,
    logger: new Logger({ logLevel: 'SILENT' }),
    onAlarm: (transition) => transitions.push(transition),
  });
});
afterAll(async () => {
  await guard?.close();
  await s3?.cleanup();
});

/** `perSecond` requests in each of the next `seconds` seconds, then the clock past them. */
const traffic = (
  model: string,
  version: number,
  variant: string,
  seconds: number,
  perSecond: number,
  values: (i: number) => { ModelErrors: number; Latency: number },
): void => {
  for (let s = 0; s < seconds; s++) {
    for (let i = 0; i < perSecond; i++) {
      guard.onOutput(emf(now + s * 1000 + i, model, version, variant, values(i)));
    }
  }
  now += seconds * 1000;
};

describe('the local guard', () => {
  it('invokes rollback once when a version goes to ALARM on its EMF lines', async () => {
    await modelWith(registry, 'lines', 2, {
      production: 1,
      candidate: candidateOf(2, new Date(now + 3_600_000)),
    });
    guard.onOutput('{"level":"INFO","message":"request"}');
    traffic('lines', 1, 'production', 5, 40, () => ({ ModelErrors: 0, Latency: 3 }));
    traffic('lines', 2, 'candidate', 5, 25, (i) => ({
      ModelErrors: i % 4 === 0 ? 1 : 0,
      Latency: 4,
    }));

    await guard.evaluateNow();
    await guard.evaluateNow();

    expect(guard.alarms()).toEqual(['model-errors lines@2']);
    const fired = transitions.filter((t) => t.state === 'ALARM');
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({
      rule: 'model-errors',
      alarmName: 'maas-guard-model-errors',
      model: 'lines',
      version: 2,
      evaluation: { breaching: 5 },
      response: { result: 'handled', outcome: { changed: true, action: 'dropped-candidate' } },
    });
    expect((await registry.getAliases('lines'))?.aliases).toMatchObject({
      production: 1,
      rolledBack: [2],
    });
  });

  it('forgets a series once its data has aged out, as a contributor without data', async () => {
    // past the longest look-back: the slow rule's window, a settle time and two more back
    now += 600_000;
    await guard.evaluateNow();
    expect(guard.alarms()).toEqual([]);
    expect(guard.metrics.keys()).toEqual([]);
  });

  it('runs promote: a baked candidate with healthy figures becomes production', async () => {
    await modelWith(registry, 'baked', 2, {
      production: 1,
      candidate: candidateOf(2, new Date(now - 1000)),
    });
    traffic('baked', 2, 'candidate', 5, 25, () => ({ ModelErrors: 0, Latency: 5 }));

    const result = await guard.promoteNow();

    expect(result.promotions).toEqual([
      { model: 'baked', version: 2, result: 'promoted', previous: 1 },
    ]);
    expect((await registry.getAliases('baked'))?.aliases).toMatchObject({
      production: 2,
      knownGood: [1],
    });
    // 'lines' v2 was rolled back: the schedule leaves it alone
    expect((await registry.getAliases('lines'))?.aliases.production).toBe(1);
  });
});

describe('contributorAlarmEvent', () => {
  it('is an alarm action event the rollback function reads back', () => {
    const [def] = alarmDefinitions();
    if (def === undefined) throw new Error('no rule');
    const event = contributorAlarmEvent(
      def,
      'maas-guard-model-errors',
      { model: 'iris', version: 3 },
      { rule: def.name, state: 'ALARM', breaching: 3, reason: '3 of the last 5' },
      new Date(now),
    );
    expect(parseAlarmEvent(event)).toMatchObject({
      alarmName: 'maas-guard-model-errors',
      state: 'ALARM',
      reason: '3 of the last 5',
      dimensions: { Model: 'iris', Version: '3' },
    });
    expect(event.alarmData.alarmContributor?.id).toMatch(/^[0-9a-f]{16}$/);
  });
});
