import {
  type CloudWatchClient,
  GetMetricDataCommand,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import { METRICS_NAMESPACE } from '../metrics/index.ts';
import type { PeriodFigures } from './alarms.ts';
import type { MetricsReader } from './health.ts';

/** The figures of a period, each one GetMetricData query on the version's routed series. */
const FIGURES = [
  { id: 'started', metric: 'Started', stat: 'Sum' },
  { id: 'completed', metric: 'Requests', stat: 'Sum' },
  { id: 'errors', metric: 'ModelErrors', stat: 'Sum' },
  { id: 'p50', metric: 'Latency', stat: 'p50' },
  { id: 'p99', metric: 'Latency', stat: 'p99' },
  { id: 'shadowChecks', metric: 'ShadowChecks', stat: 'Sum' },
  { id: 'shadowRegressions', metric: 'ShadowRegressions', stat: 'Sum' },
] as const;

type FigureId = (typeof FIGURES)[number]['id'];

const query = (
  figure: (typeof FIGURES)[number],
  model: string,
  version: number,
  periodSeconds: number,
): MetricDataQuery => ({
  Id: figure.id,
  MetricStat: {
    Metric: {
      Namespace: METRICS_NAMESPACE,
      MetricName: figure.metric,
      Dimensions: [
        { Name: 'Model', Value: model },
        { Name: 'Version', Value: String(version) },
      ],
    },
    Period: periodSeconds,
    Stat: figure.stat,
  },
  ReturnData: true,
});

/**
 * The exact figures behind the rules, from CloudWatch: per period of one version's routed series,
 * the started, answered and failed requests, latency p50 and p99 (which a Metrics Insights alarm
 * cannot compute), and the shadow's checks, in one GetMetricData call (paginated).
 */
export class CloudWatchMetricsReader implements MetricsReader {
  constructor(private readonly client: CloudWatchClient) {}

  async periods(
    model: string,
    version: number,
    range: { start: number; end: number },
    periodSeconds: number,
  ): Promise<PeriodFigures[]> {
    const points = new Map<number, PeriodFigures>();
    const at = (time: Date): PeriodFigures => {
      const start = time.getTime();
      let point = points.get(start);
      if (point === undefined) {
        point = {
          start,
          started: 0,
          completed: 0,
          errors: 0,
          shadowChecks: 0,
          shadowRegressions: 0,
        };
        points.set(start, point);
      }
      return point;
    };
    let nextToken: string | undefined;
    do {
      const page = await this.client.send(
        new GetMetricDataCommand({
          StartTime: new Date(range.start),
          EndTime: new Date(range.end),
          ScanBy: 'TimestampAscending',
          MetricDataQueries: FIGURES.map((f) => query(f, model, version, periodSeconds)),
          ...(nextToken === undefined ? {} : { NextToken: nextToken }),
        }),
      );
      for (const result of page.MetricDataResults ?? []) {
        const id = result.Id as FigureId | undefined;
        if (id === undefined || !FIGURES.some((f) => f.id === id)) continue;
        const values = result.Values ?? [];
        (result.Timestamps ?? []).forEach((time, i) => {
          const value = values[i];
          if (value === undefined) return;
          at(time)[id] = value;
        });
      }
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
    return [...points.values()].sort((a, b) => a.start - b.start);
  }
}
