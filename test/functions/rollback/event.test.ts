import { describe, expect, it } from 'vitest';
import { InvalidAlarmEventError, parseAlarmEvent } from '../../../functions/rollback/handler.ts';
import { ConfigError } from '../../../src/config/index.ts';
import { guardSettings } from '../../../src/guard/index.ts';

const state = {
  value: 'ALARM',
  reason: 'Threshold Crossed: 1 datapoint was greater than the threshold (0.05).',
  timestamp: '2026-06-01T12:00:04.919+0000',
};
const insights = {
  metrics: [
    {
      id: 'm1',
      expression:
        'SELECT AVG(ModelErrors) FROM SCHEMA("Maas", Model, Version) GROUP BY Model, Version ORDER BY AVG() DESC LIMIT 500',
      returnData: true,
      period: 60,
    },
  ],
};

describe('parseAlarmEvent', () => {
  it('reads a contributor of a Metrics Insights alarm invoking the function', () => {
    const signal = parseAlarmEvent({
      source: 'aws.cloudwatch',
      alarmArn: 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:maas-guard-model-errors',
      accountId: '123456789012',
      time: '2026-06-01T12:00:04.919+0000',
      region: 'us-east-1',
      alarmData: {
        alarmName: 'maas-guard-model-errors',
        alarmContributor: { id: '6d442278dba546f6', attributes: { Model: 'iris', Version: '2' } },
        state,
        configuration: insights,
      },
    });
    expect(signal).toEqual({
      alarmName: 'maas-guard-model-errors',
      state: 'ALARM',
      reason: state.reason,
      timestamp: state.timestamp,
      dimensions: { Model: 'iris', Version: '2' },
      contributorId: '6d442278dba546f6',
    });
  });

  it('reads an EventBridge contributor state change', () => {
    const signal = parseAlarmEvent({
      version: '0',
      id: '6d226bbc-07f0-9a31-3359-1736968f8ded',
      'detail-type': 'CloudWatch Alarm Contributor State Change',
      source: 'aws.cloudwatch',
      account: '123456789012',
      time: '2026-06-01T12:00:04Z',
      region: 'us-east-1',
      resources: ['arn:aws:cloudwatch:us-east-1:123456789012:alarm:maas-guard-latency'],
      detail: {
        alarmName: 'maas-guard-latency',
        alarmContributor: { id: 'a1', attributes: { Model: 'encoder', Version: '7' } },
        state,
        configuration: insights,
      },
    });
    expect(signal).toMatchObject({
      alarmName: 'maas-guard-latency',
      dimensions: { Model: 'encoder', Version: '7' },
      contributorId: 'a1',
    });
  });

  it('reads a single-metric alarm from its metric dimensions', () => {
    const signal = parseAlarmEvent({
      source: 'aws.cloudwatch',
      alarmArn: 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:iris-errors',
      accountId: '123456789012',
      time: '2026-06-01T12:00:04.919+0000',
      region: 'us-east-1',
      alarmData: {
        alarmName: 'iris-errors',
        state,
        previousState: { value: 'OK', reason: 'ok', timestamp: state.timestamp },
        configuration: {
          metrics: [
            {
              id: 'requests',
              metricStat: {
                metric: { namespace: 'Maas', name: 'Requests', dimensions: { Service: 'x' } },
                period: 60,
                stat: 'Sum',
              },
              returnData: false,
            },
            {
              id: 'errors',
              metricStat: {
                metric: {
                  namespace: 'Maas',
                  name: 'ModelErrors',
                  dimensions: { Model: 'iris', Variant: 'candidate' },
                },
                period: 60,
                stat: 'Average',
              },
              returnData: true,
            },
          ],
        },
      },
    });
    expect(signal.dimensions).toEqual({ Model: 'iris', Variant: 'candidate' });
    expect(signal.contributorId).toBeUndefined();
  });

  it('refuses what is not an alarm event', () => {
    expect(() => parseAlarmEvent('ALARM')).toThrow(InvalidAlarmEventError);
    expect(() => parseAlarmEvent({ Records: [] })).toThrow(/neither "alarmData" nor "detail"/);
    expect(() => parseAlarmEvent({ alarmData: { alarmName: 'x' } })).toThrow(
      /without "alarmName" or "state.value"/,
    );
  });
});

describe('guardSettings', () => {
  it('defaults to the cloud rules, a one-hour watch window and the stack alarm prefix', () => {
    const settings = guardSettings({});
    expect(settings.definitions.map((d) => d.periodSeconds)).toEqual([60, 60, 60]);
    expect(settings.settleMs).toBe(75_000);
    expect(settings.minEvidence).toBe(100);
    expect(settings.watchWindowMs).toBe(60 * 60_000);
    expect(settings.promoteEveryMs).toBe(5 * 60_000);
    expect(settings.alarmPrefix).toBe('maas-guard-');
    expect(settings.alertTopicArn).toBeUndefined();
  });

  it('reads thresholds, minimum requests, time scale, prefix and topic', () => {
    const settings = guardSettings({
      MAAS_ALARM_THRESHOLDS: '{"latency": 800}',
      MAAS_GUARD_MIN_REQUESTS: '5',
      MAAS_GUARD_TIME_SCALE: '0.05',
      MAAS_WATCH_MINUTES: '10',
      MAAS_GUARD_ALARM_PREFIX: 'prod-guard-',
      MAAS_ALERT_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:maas',
    });
    expect(settings.definitions).toMatchObject([
      { name: 'model-errors', threshold: 0.05, minRequests: 5, periodSeconds: 3 },
      { name: 'latency', threshold: 800, minRequests: 5, periodSeconds: 3 },
      { name: 'slow', threshold: 2000, minRequests: 3, periodSeconds: 3 },
    ]);
    expect(settings.watchWindowMs).toBe(30_000);
    expect(settings.alarmPrefix).toBe('prod-guard-');
    expect(settings.alertTopicArn).toBe('arn:aws:sns:us-east-1:123456789012:maas');
  });

  it('names the variable that is wrong', () => {
    expect(() => guardSettings({ MAAS_ALARM_THRESHOLDS: '{"latency": "fast"}' })).toThrow(
      ConfigError,
    );
    expect(() => guardSettings({ MAAS_GUARD_TIME_SCALE: '-1' })).toThrow(/MAAS_GUARD_TIME_SCALE/);
    expect(() => guardSettings({ MAAS_GUARD_MIN_REQUESTS: '2.5' })).toThrow(
      /MAAS_GUARD_MIN_REQUESTS/,
    );
  });
});
