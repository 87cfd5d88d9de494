import { Duration, Stack } from 'aws-cdk-lib';
import {
  type Alarm,
  AlarmStatusWidget,
  AlarmWidget,
  Dashboard,
  GraphWidget,
  type IMetric,
  type IWidget,
  MathExpression,
  Stats,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DIMENSIONS, METRICS_NAMESPACE, type MetricName } from '../src/metrics/index.ts';

const PERIOD = Duration.minutes(1);
/** Charts split by model and by canary variant (production, candidate, pinned). */
const SPLIT = [DIMENSIONS.model, DIMENSIONS.variant] as const;
const BY = SPLIT.join(', ');

/** A Metrics Insights query: one line per model and variant, whatever models exist at run time. */
export const insightsQuery = (fn: 'SUM' | 'AVG' | 'MAX', metric: MetricName): string =>
  `SELECT ${fn}(${metric}) FROM SCHEMA("${METRICS_NAMESPACE}", ${BY}) GROUP BY ${BY} ORDER BY ${fn}() DESC LIMIT 100`;

/**
 * Percentiles are outside Metrics Insights; a SEARCH expression gives one line per model and
 * variant with any statistic.
 */
export const percentileSearch = (metric: MetricName, stat: 'p50' | 'p99'): string =>
  `SEARCH('{${[METRICS_NAMESPACE, ...SPLIT].join(',')}} MetricName="${metric}"', '${stat}', ${PERIOD.toSeconds()})`;

const byModel = (expression: string, label: string): IMetric =>
  new MathExpression({ expression, label, period: PERIOD });

const graph = (title: string, metrics: IMetric[], unit?: string): GraphWidget =>
  new GraphWidget({
    title,
    left: metrics,
    width: 8,
    height: 6,
    ...(unit === undefined ? {} : { leftYAxis: { label: unit, showUnits: false } }),
  });

export interface MaasDashboardProps {
  readonly dashboardName: string;
  readonly alarms: readonly Alarm[];
  readonly functions: Readonly<Record<string, IFunction>>;
  readonly failureQueues: Readonly<Record<string, IQueue>>;
}

/**
 * One page for operators: the guard alarms first, then traffic, errors, latency, cold starts and
 * model loads per model and variant (queries, so models uploaded after deploy appear by
 * themselves), then the functions and failure queues underneath.
 */
export class MaasDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: MaasDashboardProps) {
    super(scope, id);
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(3),
    });

    const rows: IWidget[][] = [
      [
        new TextWidget({
          markdown: `# onnx-maas\nPer model and variant (\`${METRICS_NAMESPACE}\` namespace). A guard alarm in ALARM has already invoked rollback for that model; see \`maas history <model>\`.`,
          width: 24,
          height: 2,
        }),
      ],
      [
        new AlarmStatusWidget({
          title: 'Guard alarms (each model + variant is a contributor)',
          alarms: [...props.alarms],
          width: 24,
          height: Math.max(2, 1 + props.alarms.length),
        }),
      ],
      [
        graph('Requests', [byModel(insightsQuery('SUM', 'Requests'), 'requests')], 'count'),
        graph(
          'Model errors (server side)',
          [byModel(insightsQuery('SUM', 'ModelErrors'), 'model errors')],
          'count',
        ),
        graph(
          'Client errors (4xx)',
          [byModel(insightsQuery('SUM', 'ClientErrors'), 'client errors')],
          'count',
        ),
      ],
      [
        graph(
          'Latency p50 (model load excluded)',
          [byModel(percentileSearch('Latency', 'p50'), 'p50')],
          'ms',
        ),
        graph(
          'Latency p99 (model load excluded)',
          [byModel(percentileSearch('Latency', 'p99'), 'p99')],
          'ms',
        ),
        graph(
          'Inference p99 (session run)',
          [byModel(percentileSearch('InferenceLatency', 'p99'), 'p99')],
          'ms',
        ),
      ],
      [
        graph(
          'Started vs answered (routed; the gap never finished)',
          [
            byModel(insightsQuery('SUM', 'Started'), 'started'),
            byModel(insightsQuery('SUM', 'Requests'), 'answered'),
          ],
          'count',
        ),
        graph(
          'Shadow: production failures re-run on the previous version',
          [
            byModel(insightsQuery('SUM', 'ShadowChecks'), 're-run'),
            byModel(insightsQuery('SUM', 'ShadowRegressions'), 'answered there (regressions)'),
          ],
          'count',
        ),
        graph(
          'Shadow latency (max, paid by failing requests)',
          [byModel(insightsQuery('MAX', 'ShadowLatency'), 'shadow')],
          'ms',
        ),
      ],
      [
        graph('Cold starts', [byModel(insightsQuery('SUM', 'ColdStart'), 'cold starts')], 'count'),
        graph(
          'Model load time (max)',
          [byModel(insightsQuery('MAX', 'ModelLoadLatency'), 'load')],
          'ms',
        ),
        graph(
          'Failed asynchronous events (failure queues)',
          Object.entries(props.failureQueues).map(([name, queue]) =>
            queue.metricApproximateNumberOfMessagesVisible({
              label: name,
              period: PERIOD,
              statistic: Stats.MAXIMUM,
            }),
          ),
          'messages',
        ),
      ],
      ...chunk(
        Object.entries(props.functions).map(([name, fn]) =>
          graph(`${name}: invocations, errors, throttles`, [
            fn.metricInvocations({ period: PERIOD, label: 'invocations' }),
            fn.metricErrors({ period: PERIOD, label: 'errors' }),
            fn.metricThrottles({ period: PERIOD, label: 'throttles' }),
          ]),
        ),
        3,
      ),
      ...chunk(
        props.alarms.map(
          (alarm) => new AlarmWidget({ title: alarm.alarmName, alarm, width: 8, height: 6 }),
        ),
        3,
      ),
    ];
    for (const row of rows) this.dashboard.addWidgets(...row);
  }

  /** The console address of the dashboard (a stack output). */
  get url(): string {
    const region = Stack.of(this).region;
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${this.dashboard.dashboardName}`;
  }
}

const chunk = <T>(items: readonly T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
};
