import { Logger } from '@aws-lambda-powertools/logger';
import {
  CloudWatchClient,
  GetMetricDataCommand,
  type GetMetricDataCommandInput,
  type MetricDataResult,
} from '@aws-sdk/client-cloudwatch';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPromoteHandler } from '../../../functions/promote/handler.ts';
import {
  type AlarmActionEvent,
  createRollbackHandler,
} from '../../../functions/rollback/handler.ts';
import { CloudWatchMetricsReader, SnsNotifier } from '../../../src/guard/aws.ts';
import { type GuardDeps, guardSettings } from '../../../src/guard/index.ts';
import { Registry } from '../../../src/registry/index.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';
import { candidateOf, modelWith } from './fixtures.ts';

const cloudwatch = mockClient(CloudWatchClient);
const sns = mockClient(SNSClient);
let s3: TestS3;
let registry: Registry;

const now = new Date('2026-06-01T12:07:30.000Z');
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:maas-alerts';
const logger = new Logger({ logLevel: 'SILENT' });

/** What CloudWatch holds per model version: per-minute Requests and the rule's statistic. */
type Series = Record<string, { requests: number[]; errorRate?: number[]; p99?: number[] }>;

/** Answers GetMetricData from `series`, one datapoint per minute from StartTime on. */
const serveMetrics = (series: Series) => {
  cloudwatch.on(GetMetricDataCommand).callsFake((input: GetMetricDataCommandInput) => {
    const results: MetricDataResult[] = (input.MetricDataQueries ?? []).map((query) => {
      const stat = query.MetricStat;
      const dims = Object.fromEntries(
        (stat?.Metric?.Dimensions ?? []).map((d) => [d.Name, d.Value]),
      );
      const entry = series[`${dims.Model}@${dims.Version}`];
      const values =
        stat?.Metric?.MetricName === 'Requests'
          ? entry?.requests
          : stat?.Stat === 'p99'
            ? entry?.p99
            : entry?.errorRate;
      const start = (input.StartTime as Date).getTime();
      const period = (stat?.Period ?? 60) * 1000;
      return {
        Id: query.Id,
        Timestamps: (values ?? []).map((_, i) => new Date(start + i * period)),
        Values: values ?? [],
        StatusCode: 'Complete',
      };
    });
    return Promise.resolve({ MetricDataResults: results });
  });
};

const deps = (): GuardDeps => ({
  registry,
  metrics: new CloudWatchMetricsReader(new CloudWatchClient({ region: 'us-east-1' })),
  settings: guardSettings({ MAAS_GUARD_ALARM_PREFIX: 'maas-prod-guard-' }),
  notifier: new SnsNotifier(new SNSClient({ region: 'us-east-1' }), TOPIC),
  clock: () => now,
});

const contributorEvent = (
  rule: string,
  attributes: Record<string, string>,
  state = 'ALARM',
): AlarmActionEvent => ({
  source: 'aws.cloudwatch',
  alarmArn: `arn:aws:cloudwatch:us-east-1:123456789012:alarm:maas-prod-guard-${rule}`,
  accountId: '123456789012',
  time: now.toISOString(),
  region: 'us-east-1',
  alarmData: {
    alarmName: `maas-prod-guard-${rule}`,
    alarmContributor: { id: 'f00dfeedf00dfeed', attributes },
    state: { value: state, reason: 'Threshold Crossed', timestamp: now.toISOString() },
    configuration: {
      metrics: [
        { id: 'm1', expression: 'SELECT AVG(ModelErrors) ...', returnData: true, period: 60 },
      ],
    },
  },
});

beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
});
afterAll(async () => {
  cloudwatch.restore();
  sns.restore();
  await s3?.cleanup();
});
afterEach(() => {
  cloudwatch.reset();
  sns.reset();
});

const bake = (minutes: number) => new Date(now.getTime() + minutes * 60_000);

describe('the rollback function', () => {
  const handler = createRollbackHandler({ deps, logger });

  it('rolls back the contributor in alarm once CloudWatch confirms the rule', async () => {
    await modelWith(registry, 'iris', 2, { production: 1, candidate: candidateOf(2, bake(20)) });
    serveMetrics({
      'iris@2': { requests: [40, 45, 50, 42, 48], errorRate: [0.3, 0.02, 0.4, 0.35, 0.01] },
    });
    sns.on(PublishCommand).resolves({ MessageId: '1' });

    const response = await handler(
      contributorEvent('model-errors', { Model: 'iris', Version: '2' }),
    );

    expect(response).toMatchObject({
      result: 'handled',
      outcome: { changed: true, action: 'dropped-candidate', version: 2 },
    });
    const request = cloudwatch.commandCalls(GetMetricDataCommand)[0]?.args[0].input;
    expect(request?.StartTime).toEqual(new Date('2026-06-01T12:02:00.000Z'));
    expect(request?.EndTime).toEqual(new Date('2026-06-01T12:07:00.000Z'));
    expect(request?.MetricDataQueries?.map((q) => q.MetricStat?.Stat)).toEqual(['Average', 'Sum']);
    const [record] = (await registry.history('iris')).filter((r) => r.event === 'rolled-back');
    expect(record?.reason).toMatch(
      /^maas-prod-guard-model-errors: 3 of the last 5 periods of 60 s had Average ModelErrors above 5\.0 %/,
    );
    expect(record?.details?.alarm).toMatchObject({
      name: 'maas-prod-guard-model-errors',
      rule: 'model-errors',
      metrics: { metric: 'ModelErrors', threshold: 0.05, breaching: 3 },
    });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it('leaves a version alone when its periods had too few requests to judge', async () => {
    await modelWith(registry, 'quiet', 2, { production: 1, candidate: candidateOf(2, bake(20)) });
    serveMetrics({ 'quiet@2': { requests: [3, 2, 4, 1, 3], errorRate: [1, 1, 1, 1, 1] } });

    const response = await handler(
      contributorEvent('model-errors', { Model: 'quiet', Version: '2' }),
    );

    expect(response).toMatchObject({ result: 'unconfirmed', model: 'quiet', version: 2 });
    expect((await registry.getAliases('quiet'))?.aliases.candidate?.version).toBe(2);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('confirms latency on p99, which the Metrics Insights alarm cannot compute', async () => {
    await modelWith(registry, 'slow', 2, { production: 1, candidate: candidateOf(2, bake(20)) });
    serveMetrics({ 'slow@2': { requests: [30, 30, 30, 30, 30], p99: [2500, 2600, 90, 3100, 80] } });

    const response = await handler(contributorEvent('latency', { Model: 'slow', Version: '2' }));

    expect(response).toMatchObject({ result: 'handled', outcome: { changed: true, version: 2 } });
    const stats = cloudwatch
      .commandCalls(GetMetricDataCommand)[0]
      ?.args[0].input.MetricDataQueries?.map((q) => q.MetricStat?.Stat);
    expect(stats).toEqual(['p99', 'Sum']);
  });

  it('finds the version behind a Variant contributor through the aliases', async () => {
    await modelWith(registry, 'by-variant', 3, {
      production: 2,
      knownGood: [1],
      candidate: candidateOf(3, bake(20)),
    });
    serveMetrics({ 'by-variant@3': { requests: [50, 50, 50], errorRate: [0.5, 0.5, 0.5] } });

    const response = await handler(
      contributorEvent('model-errors', { Model: 'by-variant', Variant: 'candidate' }),
    );

    expect(response).toMatchObject({ result: 'handled', outcome: { changed: true, version: 3 } });
  });

  it('ignores OK transitions and series that name no model', async () => {
    expect(
      await handler(contributorEvent('latency', { Model: 'iris', Version: '1' }, 'OK')),
    ).toEqual({
      result: 'ignored',
      why: 'state is OK',
    });
    expect(await handler(contributorEvent('latency', { FunctionName: 'x' }))).toMatchObject({
      result: 'ignored',
    });
    expect(cloudwatch.commandCalls(GetMetricDataCommand)).toHaveLength(0);
  });

  it('fails on an event that is not an alarm, so it lands in the failure queue', async () => {
    await expect(handler({ Records: [] })).rejects.toThrow(/CloudWatch alarm action/);
  });
});

describe('the promote function', () => {
  it('promotes baked candidates with healthy figures and rolls back those in ALARM', async () => {
    const own = await startTestS3();
    const ownRegistry = new Registry(own.store);
    try {
      await modelWith(ownRegistry, 'good', 2, {
        production: 1,
        candidate: candidateOf(2, bake(-1)),
      });
      await modelWith(ownRegistry, 'bad', 2, {
        production: 1,
        candidate: candidateOf(2, bake(-1)),
      });
      serveMetrics({
        'good@2': {
          requests: [30, 30, 30, 30, 30],
          errorRate: [0, 0, 0.03, 0, 0],
          p99: [40, 45, 41, 39, 50],
        },
        'bad@2': { requests: [30, 30, 30, 30, 30], errorRate: [0.2, 0.3, 0.2, 0, 0] },
      });
      const handler = createPromoteHandler({
        deps: () => ({ ...deps(), registry: ownRegistry }),
        logger,
      });

      const result = await handler({ source: 'aws.events', 'detail-type': 'Scheduled Event' });

      expect(result.promotions.map((p) => [p.model, p.result])).toEqual([
        ['bad', 'held'],
        ['good', 'promoted'],
      ]);
      expect(result.rollbacks).toMatchObject([{ changed: true, model: 'bad', version: 2 }]);
      expect((await ownRegistry.getAliases('good'))?.aliases.production).toBe(2);
      expect((await ownRegistry.getAliases('bad'))?.aliases).toMatchObject({
        production: 1,
        rolledBack: [2],
      });
      const [record] = (await ownRegistry.history('bad')).filter((r) => r.event === 'rolled-back');
      expect(record).toMatchObject({
        actor: 'promote',
        details: { alarm: { rule: 'model-errors' } },
      });
    } finally {
      await own.cleanup();
    }
  });
});
