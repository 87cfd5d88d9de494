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
import { createPromoteHandler } from '../../functions/promote/handler.ts';
import { type AlarmActionEvent, createRollbackHandler } from '../../functions/rollback/handler.ts';
import { CloudWatchMetricsReader, SnsNotifier } from '../../src/guard/aws.ts';
import { type GuardDeps, guardSettings } from '../../src/guard/index.ts';
import { keys, Registry } from '../../src/registry/index.ts';
import { candidateOf, modelWith } from '../support/guard-fixtures.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';
import { overwrite } from '../support/registry.ts';

const cloudwatch = mockClient(CloudWatchClient);
const sns = mockClient(SNSClient);
let s3: TestS3;
let registry: Registry;

const now = new Date('2026-06-01T12:07:30.000Z');
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:maas-alerts';
const logger = new Logger({ logLevel: 'SILENT' });

/** What CloudWatch holds per routed model version: one value per minute of each figure. */
interface Figures {
  started?: number[];
  completed: number[];
  errors?: number[];
  p50?: number[];
  p99?: number[];
  shadowChecks?: number[];
  shadowRegressions?: number[];
}
type Series = Record<string, Figures>;

const FIGURE_OF: Record<string, keyof Figures> = {
  'Started Sum': 'started',
  'Requests Sum': 'completed',
  'ModelErrors Sum': 'errors',
  'Latency p50': 'p50',
  'Latency p99': 'p99',
  'ShadowChecks Sum': 'shadowChecks',
  'ShadowRegressions Sum': 'shadowRegressions',
};

/** Answers GetMetricData from `series`, one datapoint per minute from StartTime on. */
const serveMetrics = (series: Series) => {
  cloudwatch.on(GetMetricDataCommand).callsFake((input: GetMetricDataCommandInput) => {
    const results: MetricDataResult[] = (input.MetricDataQueries ?? []).map((query) => {
      const stat = query.MetricStat;
      const dims = Object.fromEntries(
        (stat?.Metric?.Dimensions ?? []).map((d) => [d.Name, d.Value]),
      );
      const entry = series[`${dims.Model}@${dims.Version}`];
      const figure = FIGURE_OF[`${stat?.Metric?.MetricName} ${stat?.Stat}`];
      const given = figure === undefined ? undefined : entry?.[figure];
      // a Started figure not given: every request that started also answered
      const values = given ?? (figure === 'started' ? entry?.completed : undefined);
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

const five = (value: number): number[] => [value, value, value, value, value];

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

  it('rolls back a candidate that fails where production answers, once the figures confirm it', async () => {
    await modelWith(registry, 'iris', 2, { production: 1, candidate: candidateOf(2, bake(20)) });
    serveMetrics({
      'iris@1': { completed: five(400), errors: five(4), p50: five(3), p99: five(9) },
      'iris@2': { completed: [40, 45, 50, 42, 48], errors: [12, 1, 20, 15, 0], p50: five(3) },
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
    // the rules read the routed series only, never the model's cold loads
    expect(
      request?.MetricDataQueries?.map(
        (q) => `${q.MetricStat?.Metric?.MetricName} ${q.MetricStat?.Stat}`,
      ),
    ).toEqual(Object.keys(FIGURE_OF));
    const [record] = (await registry.history('iris')).filter((r) => r.event === 'rolled-back');
    expect(record?.reason).toMatch(
      /^maas-prod-guard-model-errors: 3 of the last 5 periods of 60 s breached model-errors against production v1/,
    );
    expect(record?.details?.alarm).toMatchObject({
      name: 'maas-prod-guard-model-errors',
      rule: 'model-errors',
      metrics: { rule: 'model-errors', threshold: 0.05, breaching: 3 },
    });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it('does not roll back a candidate attacked with inputs that fail on production too', async () => {
    await modelWith(registry, 'attacked', 2, {
      production: 1,
      candidate: candidateOf(2, bake(20)),
    });
    serveMetrics({
      'attacked@1': { completed: five(360), errors: five(180), p50: five(3), p99: five(9) },
      'attacked@2': { completed: five(40), errors: [20, 22, 19, 21, 20], p50: five(3) },
    });

    const response = await handler(
      contributorEvent('model-errors', { Model: 'attacked', Version: '2' }),
    );

    expect(response).toMatchObject({ result: 'unconfirmed', model: 'attacked', version: 2 });
    expect((await registry.getAliases('attacked'))?.aliases.candidate?.version).toBe(2);
  });

  it('leaves a version alone when its periods had too few requests to judge', async () => {
    await modelWith(registry, 'quiet', 2, { production: 1, candidate: candidateOf(2, bake(20)) });
    serveMetrics({ 'quiet@2': { completed: [3, 2, 4, 1, 3], errors: [3, 2, 4, 1, 3] } });

    const response = await handler(
      contributorEvent('model-errors', { Model: 'quiet', Version: '2' }),
    );

    expect(response).toMatchObject({ result: 'unconfirmed', model: 'quiet', version: 2 });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('judges latency on p99, which the Metrics Insights alarm cannot compute', async () => {
    await modelWith(registry, 'laggy', 2, { production: 1, candidate: candidateOf(2, bake(20)) });
    serveMetrics({
      'laggy@1': { completed: five(300), p50: five(40), p99: five(200) },
      'laggy@2': { completed: five(30), p50: five(60), p99: [2500, 2600, 90, 3100, 80] },
    });

    const response = await handler(contributorEvent('latency', { Model: 'laggy', Version: '2' }));

    expect(response).toMatchObject({ result: 'handled', outcome: { changed: true, version: 2 } });
  });

  it('finds the version behind a Variant contributor through the aliases', async () => {
    await modelWith(registry, 'by-variant', 3, {
      production: 2,
      knownGood: [1],
      candidate: candidateOf(3, bake(20)),
    });
    serveMetrics({ 'by-variant@3': { completed: [50, 50, 50], errors: [25, 25, 25] } });

    const response = await handler(
      contributorEvent('model-errors', { Model: 'by-variant', Variant: 'candidate' }),
    );

    expect(response).toMatchObject({ result: 'handled', outcome: { changed: true, version: 3 } });
  });

  it('ignores OK transitions', async () => {
    expect(
      await handler(contributorEvent('latency', { Model: 'iris', Version: '1' }, 'OK')),
    ).toEqual({ result: 'ignored', why: 'state is OK' });
    expect(cloudwatch.commandCalls(GetMetricDataCommand)).toHaveLength(0);
  });
});

describe('the alarm payloads AWS documents', () => {
  // Shapes from "Invoke a Lambda function from an alarm", section "Lambda alarm payload":
  // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-actions-Lambda.html
  // (metric alarm and composite alarm examples), with a Metrics Insights alarm's contributor as
  // https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_AlarmContributor.html
  // describes it (ContributorId, ContributorAttributes). Values are ours.
  const warnings: string[] = [];
  const watching = new Logger({ logLevel: 'WARN' });
  watching.warn = ((message: string) => {
    warnings.push(message);
  }) as typeof watching.warn;
  const handler = createRollbackHandler({ deps, logger: watching });

  const metricAlarm = {
    source: 'aws.cloudwatch',
    alarmArn: 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:maas-prod-guard-model-errors',
    accountId: '123456789012',
    time: '2026-06-01T12:07:30.000+0000',
    region: 'us-east-1',
    alarmData: {
      alarmName: 'maas-prod-guard-model-errors',
      state: {
        value: 'ALARM',
        reason: 'Threshold Crossed',
        timestamp: '2026-06-01T12:07:30.000+0000',
      },
      previousState: {
        value: 'OK',
        reason: 'Threshold Crossed',
        reasonData: '{"version":"1.0","statistic":"Average","period":60,"threshold":0.05}',
        timestamp: '2026-06-01T12:01:00.000+0000',
      },
      configuration: {
        description: 'guard',
        metrics: [
          {
            id: 'c7d0f1a2-0000-4000-8000-000000000001',
            metricStat: {
              metric: {
                namespace: 'Maas',
                name: 'ModelErrors',
                dimensions: { Model: 'doc-metric', Version: '2' },
              },
              period: 60,
              stat: 'Average',
              unit: 'Count',
            },
            returnData: true,
          },
        ],
      },
    },
  };

  const compositeAlarm = {
    source: 'aws.cloudwatch',
    alarmArn: 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:maas-prod-guard-any',
    accountId: '123456789012',
    time: '2026-06-01T12:07:30.000+0000',
    region: 'us-east-1',
    alarmData: {
      alarmName: 'maas-prod-guard-any',
      state: {
        value: 'ALARM',
        reason:
          'arn:aws:cloudwatch:us-east-1:123456789012:alarm:maas-prod-guard-latency transitioned to ALARM',
        reasonData:
          '{"triggeringAlarms":[{"arn":"arn:aws:cloudwatch:us-east-1:123456789012:alarm:maas-prod-guard-latency","state":{"value":"ALARM","timestamp":"2026-06-01T12:06:00.000+0000"}}]}',
        timestamp: '2026-06-01T12:07:30.000+0000',
      },
      previousState: { value: 'OK', reason: '', timestamp: '2026-06-01T12:00:00.000+0000' },
      configuration: {
        alarmRule: 'ALARM(maas-prod-guard-latency) OR ALARM(maas-prod-guard-model-errors)',
        actionsSuppressor: 'maas-prod-guard-maintenance',
        actionsSuppressorWaitPeriod: 120,
        actionsSuppressorExtensionPeriod: 180,
      },
    },
  };

  it('reads the metric alarm example: the series is in configuration.metrics[].metricStat', async () => {
    await modelWith(registry, 'doc-metric', 2, {
      production: 1,
      candidate: candidateOf(2, bake(20)),
    });
    serveMetrics({ 'doc-metric@2': { completed: five(40), errors: five(30) } });

    expect(await handler(metricAlarm)).toMatchObject({
      result: 'handled',
      outcome: { changed: true, model: 'doc-metric', version: 2 },
    });
  });

  it('reads a Metrics Insights contributor: the series is in alarmContributor.attributes', async () => {
    await modelWith(registry, 'doc-contributor', 2, {
      production: 1,
      candidate: candidateOf(2, bake(20)),
    });
    serveMetrics({ 'doc-contributor@2': { completed: five(40), errors: five(30) } });

    expect(
      await handler(contributorEvent('model-errors', { Model: 'doc-contributor', Version: '2' })),
    ).toMatchObject({ result: 'handled', outcome: { changed: true, version: 2 } });
  });

  it('judges every watched version on a composite alarm, which names no series, with a WARN', async () => {
    const own = await startTestS3();
    const ownRegistry = new Registry(own.store);
    try {
      await modelWith(ownRegistry, 'doc-composite', 2, {
        production: 1,
        candidate: candidateOf(2, bake(20)),
      });
      serveMetrics({ 'doc-composite@2': { completed: five(40), errors: five(30) } });
      const composite = createRollbackHandler({
        deps: () => ({ ...deps(), registry: ownRegistry }),
        logger: watching,
      });
      warnings.length = 0;

      const response = await composite(compositeAlarm);

      expect(response).toMatchObject({
        result: 'reevaluated',
        review: { rollbacks: [{ changed: true, model: 'doc-composite', version: 2 }] },
      });
      expect(warnings).toEqual(['alarm names no model version: judged every watched version']);
    } finally {
      await own.cleanup();
    }
  });

  it('judges every watched version on a shape it cannot read, never dropping it in silence', async () => {
    const own = await startTestS3();
    const ownRegistry = new Registry(own.store);
    try {
      await modelWith(ownRegistry, 'unknown-shape', 2, {
        production: 1,
        candidate: candidateOf(2, bake(20)),
      });
      serveMetrics({ 'unknown-shape@2': { completed: five(40), errors: five(30) } });
      const unknown = createRollbackHandler({
        deps: () => ({ ...deps(), registry: ownRegistry }),
        logger: watching,
      });
      warnings.length = 0;

      const response = await unknown({ Records: [{ Sns: { Message: '{"AlarmName":"x"}' } }] });

      expect(response).toMatchObject({
        result: 'reevaluated',
        review: { rollbacks: [{ changed: true, model: 'unknown-shape', version: 2 }] },
      });
      expect(warnings).toEqual(['unreadable alarm event: judged every watched version']);
    } finally {
      await own.cleanup();
    }
  });
});

describe('the promote function', () => {
  const withOwnBucket = async (
    run: (ownRegistry: Registry, handler: ReturnType<typeof createPromoteHandler>) => Promise<void>,
  ) => {
    const own = await startTestS3();
    const ownRegistry = new Registry(own.store);
    try {
      await run(
        ownRegistry,
        createPromoteHandler({ deps: () => ({ ...deps(), registry: ownRegistry }), logger }),
      );
    } finally {
      await own.cleanup();
    }
  };
  const tick = { source: 'aws.events', 'detail-type': 'Scheduled Event' };

  it('promotes baked candidates with healthy figures and rolls back those in ALARM', async () => {
    await withOwnBucket(async (ownRegistry, handler) => {
      await modelWith(ownRegistry, 'good', 2, {
        production: 1,
        candidate: candidateOf(2, bake(-1)),
      });
      await modelWith(ownRegistry, 'bad', 2, {
        production: 1,
        candidate: candidateOf(2, bake(-1)),
      });
      serveMetrics({
        'good@1': { completed: five(270), errors: five(1), p50: five(20), p99: five(40) },
        'good@2': { completed: five(30), errors: [0, 0, 1, 0, 0], p50: five(20), p99: five(45) },
        'bad@1': { completed: five(270), errors: five(1), p50: five(20), p99: five(40) },
        'bad@2': { completed: five(30), errors: [6, 9, 6, 0, 0], p50: five(20) },
      });

      const result = await handler(tick);

      expect(result.promotions.map((p) => [p.model, p.result])).toEqual([['good', 'promoted']]);
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
    });
  });

  it('goes on with every other model when one model’s aliases.json is corrupt', async () => {
    await withOwnBucket(async (ownRegistry, handler) => {
      await modelWith(ownRegistry, 'broken', 2, {
        production: 1,
        candidate: candidateOf(2, bake(-1)),
      });
      await overwrite(ownRegistry.store, keys.aliases('broken'), '{"model": "broken", "produ');
      await modelWith(ownRegistry, 'good', 2, {
        production: 1,
        candidate: candidateOf(2, bake(-1)),
      });
      await modelWith(ownRegistry, 'bad', 2, {
        production: 1,
        candidate: candidateOf(2, bake(-1)),
      });
      serveMetrics({
        'good@1': { completed: five(270), errors: five(1), p50: five(20), p99: five(40) },
        'good@2': { completed: five(30), errors: [0, 0, 1, 0, 0], p50: five(20), p99: five(45) },
        'bad@1': { completed: five(270), errors: five(1), p50: five(20), p99: five(40) },
        'bad@2': { completed: five(30), errors: [6, 9, 6, 0, 0], p50: five(20) },
      });

      const result = await handler(tick);

      expect(result.promotions.filter((p) => p.result === 'promoted').map((p) => p.model)).toEqual([
        'good',
      ]);
      expect(result.rollbacks).toMatchObject([{ changed: true, model: 'bad', version: 2 }]);
      expect(result.failures.map((f) => f.model)).toContain('broken');
      expect(result.failures[0]?.reason).toMatch(/aliases\.json/);
    });
  });

  it('rolls back on the next run a breach its one alarm invocation found unconfirmed', async () => {
    await withOwnBucket(async (ownRegistry, handler) => {
      await modelWith(ownRegistry, 'late', 2, {
        production: 1,
        candidate: candidateOf(2, bake(20)),
      });
      const rollbackHandler = createRollbackHandler({
        deps: () => ({ ...deps(), registry: ownRegistry }),
        logger,
      });
      // the alarm fires on a first bad minute: too little to confirm
      serveMetrics({
        'late@1': { completed: five(270), p50: five(20) },
        'late@2': { completed: [0, 0, 0, 0, 30], errors: [0, 0, 0, 0, 12], p50: five(20) },
      });
      expect(
        await rollbackHandler(contributorEvent('model-errors', { Model: 'late', Version: '2' })),
      ).toMatchObject({ result: 'unconfirmed' });
      // CloudWatch stays in ALARM and never invokes again; the breach goes on
      cloudwatch.reset();
      serveMetrics({
        'late@1': { completed: five(270), p50: five(20) },
        'late@2': { completed: five(30), errors: [12, 12, 12, 12, 12], p50: five(20) },
      });

      const result = await handler(tick);

      expect(result.rollbacks).toMatchObject([{ changed: true, model: 'late', version: 2 }]);
    });
  });

  it('rolls back a candidate whose requests start and never finish', async () => {
    await withOwnBucket(async (ownRegistry, handler) => {
      await modelWith(ownRegistry, 'hangs', 2, {
        production: 1,
        candidate: candidateOf(2, bake(20)),
      });
      serveMetrics({
        'hangs@1': { completed: five(90), p50: five(20) },
        // Lambda timed the invocations out: Started lines, no answers
        'hangs@2': { started: five(5), completed: five(0) },
      });

      const result = await handler(tick);

      expect(result.rollbacks).toMatchObject([{ changed: true, model: 'hangs', version: 2 }]);
      const [record] = (await ownRegistry.history('hangs')).filter(
        (r) => r.event === 'rolled-back',
      );
      expect(record?.reason).toMatch(/slow against production v1 \[unfinished over 5 requests/);
    });
  });

  it('watches production through its watch window: regressions roll it back, failures everywhere do not', async () => {
    await withOwnBucket(async (ownRegistry, handler) => {
      const promotedAt = new Date(now.getTime() - 10 * 60_000).toISOString();
      await modelWith(ownRegistry, 'regressed', 2, { production: 2, knownGood: [1], promotedAt });
      await modelWith(ownRegistry, 'blamed', 2, { production: 2, knownGood: [1], promotedAt });
      serveMetrics({
        // half the requests fail; v1 answers the ones the shadow re-ran
        'regressed@2': {
          completed: five(60),
          errors: five(30),
          shadowChecks: five(6),
          shadowRegressions: five(6),
        },
        // half the requests fail; v1 fails them too
        'blamed@2': {
          completed: five(60),
          errors: five(30),
          shadowChecks: five(6),
          shadowRegressions: five(0),
        },
      });

      const result = await handler(tick);

      expect(result.rollbacks).toMatchObject([
        {
          changed: true,
          model: 'regressed',
          version: 2,
          action: 'reverted-production',
          restored: 1,
        },
      ]);
      expect((await ownRegistry.getAliases('blamed'))?.aliases.production).toBe(2);
      expect(result.judged.map((r) => `${r.model}@${r.version} ${r.baseline.kind}`).sort()).toEqual(
        ['blamed@2 shadow', 'regressed@2 shadow'],
      );
    });
  });

  it('keeps a baked candidate without traffic a candidate, and says why once', async () => {
    await withOwnBucket(async (ownRegistry, handler) => {
      await modelWith(ownRegistry, 'unused', 2, {
        production: 1,
        candidate: candidateOf(2, bake(-1)),
      });
      serveMetrics({ 'unused@1': { completed: five(100), p50: five(5) } });

      const first = await handler(tick);
      await handler(tick);

      expect(first.promotions).toMatchObject([
        { model: 'unused', version: 2, result: 'waiting', code: 'no-traffic' },
      ]);
      const aliases = (await ownRegistry.getAliases('unused'))?.aliases;
      expect(aliases?.production).toBe(1);
      expect(aliases?.candidate?.held).toMatchObject({ code: 'no-traffic' });
      expect(aliases?.candidate?.held?.reason).toMatch(
        /served 0 routed requests .* 100 are needed/,
      );
      const records = (await ownRegistry.history('unused')).filter((r) => r.event === 'candidate');
      expect(records).toHaveLength(1);
    });
  });
});
