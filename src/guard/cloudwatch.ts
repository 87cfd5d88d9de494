import {
  type CloudWatchClient,
  GetMetricDataCommand,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import { METRICS_NAMESPACE } from '../metrics/index.ts';
import type { AlarmDefinition, Datapoint } from './alarms.ts';
import type { MetricsReader } from './health.ts';

const query = (
  id: string,
  metricName: string,
  stat: string,
  def: AlarmDefinition,
  model: string,
  version: number,
): MetricDataQuery => ({
  Id: id,
  MetricStat: {
    Metric: {
      Namespace: METRICS_NAMESPACE,
      MetricName: metricName,
      Dimensions: [
        { Name: 'Model', Value: model },
        { Name: 'Version', Value: String(version) },
      ],
    },
    Period: def.periodSeconds,
    Stat: stat,
  },
  ReturnData: true,
});

/**
 * The exact figures behind a rule, from CloudWatch: the rule's statistic (p99 included, which a
 * Metrics Insights alarm cannot evaluate) and the request count, per period of one version.
 */
export class CloudWatchMetricsReader implements MetricsReader {
  constructor(private readonly client: CloudWatchClient) {}

  async datapoints(
    def: AlarmDefinition,
    model: string,
    version: number,
    range: { start: number; end: number },
  ): Promise<Datapoint[]> {
    const points = new Map<number, Datapoint>();
    const at = (time: Date): Datapoint => {
      const start = time.getTime();
      let point = points.get(start);
      if (point === undefined) {
        point = { start, requests: 0 };
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
          MetricDataQueries: [
            query('value', def.metricName, def.exactStatistic, def, model, version),
            query('requests', 'Requests', 'Sum', def, model, version),
          ],
          ...(nextToken === undefined ? {} : { NextToken: nextToken }),
        }),
      );
      for (const result of page.MetricDataResults ?? []) {
        const values = result.Values ?? [];
        (result.Timestamps ?? []).forEach((time, i) => {
          const value = values[i];
          if (value === undefined) return;
          const point = at(time);
          if (result.Id === 'requests') point.requests = value;
          else if (result.Id === 'value') point.value = value;
        });
      }
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
    return [...points.values()].sort((a, b) => a.start - b.start);
  }
}
