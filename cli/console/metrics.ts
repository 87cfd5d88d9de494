import {
  type CloudWatchClient,
  GetMetricDataCommand,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import { emptySeries } from '../../local/guard/figures.ts';
import type { LocalMetricsStore } from '../../local/guard/metrics-store.ts';
import { errorMessage } from '../../src/errors/index.ts';
import { CloudWatchMetricsReader } from '../../src/guard/aws.ts';
import {
  type AlarmDefinition,
  baselineFor,
  checkHealth,
  DEFAULT_WATCH_WINDOW_MS,
  type MetricsReader,
} from '../../src/guard/index.ts';
import { METRICS_NAMESPACE } from '../../src/metrics/index.ts';
import type { Aliases } from '../../src/registry/index.ts';
import type { MetricsResponse, RuleLine, Summary, VersionHealth, VersionSeries } from './types.ts';

/** Where the console's charts and statuses come from. */
export interface MetricsSource {
  readonly kind: 'local' | 'remote' | 'cloudwatch';
  /** per version of `model`: chart data over the last minutes, a summary, and the rules' health */
  modelMetrics(
    model: string,
    versions: readonly number[],
    now: number,
    aliases?: Aliases,
  ): Promise<MetricsResponse>;
  /** Prometheus text of the local figures, where this console holds them */
  prometheus?(): string;
}

export const ruleLines = (definitions: readonly AlarmDefinition[]): RuleLine[] =>
  definitions.map((def) => ({
    rule: def.name,
    series: def.kind === 'errors' ? 'errorRate' : def.kind === 'slow' ? 'p50' : 'p99',
    threshold: def.threshold,
    description: def.description,
  }));

/** Requests/s and error rate over the last `steps` steps of every version together. */
export function summarize(
  series: readonly VersionSeries[],
  steps: number,
  stepMs: number,
): Summary {
  let requests = 0;
  let errors = 0;
  let length = 0;
  for (const s of series) {
    const from = Math.max(0, s.t.length - steps);
    length = Math.max(length, s.t.length - from);
    for (let i = from; i < s.t.length; i++) {
      requests += s.requests[i] ?? 0;
      errors += s.modelErrors[i] ?? 0;
    }
  }
  if (length === 0) return { rps: null, errorRate: null };
  return {
    rps: requests / ((length * stepMs) / 1000),
    errorRate: requests > 0 ? errors / requests : null,
  };
}

/** How the guard judges: its rules, how long a request may stay unanswered, the watch window. */
export interface JudgeOptions {
  settleMs: number;
  watchWindowMs: number;
}

const DEFAULT_JUDGE: JudgeOptions = { settleMs: 0, watchWindowMs: DEFAULT_WATCH_WINDOW_MS };

/** Each version judged as the guard judges it: against production, its shadow, or nothing. */
async function healthOf(
  reader: MetricsReader,
  definitions: readonly AlarmDefinition[],
  judge: JudgeOptions,
  model: string,
  versions: readonly number[],
  now: number,
  aliases: Aliases | undefined,
): Promise<VersionHealth[]> {
  return Promise.all(
    versions.map(async (version) => {
      const baseline = baselineFor(aliases, version, new Date(now), judge.watchWindowMs) ?? {
        kind: 'none' as const,
      };
      const report = await checkHealth(
        reader,
        { definitions, settleMs: judge.settleMs },
        model,
        version,
        baseline,
        now,
      );
      return {
        version,
        state: report.state,
        rules: report.evaluations.map((evaluation) => {
          const def = definitions.find((d) => d.name === evaluation.rule);
          return {
            rule: evaluation.rule,
            state: evaluation.state,
            breaching: evaluation.breaching,
            datapointsToAlarm: def?.datapointsToAlarm ?? 0,
            evaluationPeriods: def?.evaluationPeriods ?? 0,
          };
        }),
      };
    }),
  );
}

/**
 * The local stack's own figures, read in the process that runs it: the evaluator's store, the
 * very numbers its rules judge.
 */
export class LocalStoreMetrics implements MetricsSource {
  readonly kind = 'local';

  constructor(
    private readonly store: LocalMetricsStore,
    private readonly definitions: readonly AlarmDefinition[],
    private readonly judge: JudgeOptions = DEFAULT_JUDGE,
    /** the charts' window, in steps of the store's bucket. @default 120 */
    private readonly steps = 120,
  ) {}

  async modelMetrics(
    model: string,
    versions: readonly number[],
    now: number,
    aliases?: Aliases,
  ): Promise<MetricsResponse> {
    const stepMs = this.store.figures.bucketMs;
    const end = Math.floor(now / stepMs) * stepMs + stepMs;
    const start = end - this.steps * stepMs;
    const wanted = [...new Set([...versions, ...this.store.figures.versions(model)])].sort(
      (a, b) => a - b,
    );
    const series = wanted.map((version) =>
      this.store.figures.chart(model, version, { start, end }, stepMs),
    );
    return {
      stepMs,
      start,
      end,
      versions: series,
      // the last complete steps: the current one is still filling
      summary: summarize(
        series.map((s) => trimLast(s)),
        30,
        stepMs,
      ),
      rules: ruleLines(this.definitions),
      health: await healthOf(this.store, this.definitions, this.judge, model, wanted, now, aliases),
    };
  }

  prometheus(): string {
    return this.store.figures.prometheus();
  }
}

const trimLast = (s: VersionSeries): VersionSeries => ({
  ...s,
  t: s.t.slice(0, -1),
  requests: s.requests.slice(0, -1),
  modelErrors: s.modelErrors.slice(0, -1),
});

/**
 * The figures of a local stack this process does not run: asked of the stack's own console over
 * HTTP (the console `npm start` runs holds the evaluator's store).
 */
export class RemoteConsoleMetrics implements MetricsSource {
  readonly kind = 'remote';

  constructor(
    readonly url: string,
    private readonly definitions: readonly AlarmDefinition[],
    private readonly timeoutMs = 3000,
  ) {}

  async modelMetrics(
    model: string,
    versions: readonly number[],
    now: number,
  ): Promise<MetricsResponse> {
    const url = `${this.url.replace(/\/+$/, '')}/api/models/${encodeURIComponent(model)}/metrics`;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (!response.ok) throw new Error(`${url} answered ${response.status}`);
      return (await response.json()) as MetricsResponse;
    } catch (err) {
      const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
      return {
        stepMs: 1000,
        start: now,
        end: now,
        versions: versions.map((version) => emptySeries(version)),
        summary: { rps: null, errorRate: null },
        rules: ruleLines(this.definitions),
        health: [],
        error: `the local figures live in the stack's own console and ${url} did not answer (${errorMessage(cause)}): is \`npm start\` running? Pass --metrics-from with its console URL`,
      };
    }
  }
}

/** A deployed stack's figures: the predict function's EMF metrics, through GetMetricData. */
export class CloudWatchMetrics implements MetricsSource {
  readonly kind = 'cloudwatch';
  private readonly reader: CloudWatchMetricsReader;

  constructor(
    private readonly client: CloudWatchClient,
    private readonly definitions: readonly AlarmDefinition[],
    private readonly judge: JudgeOptions = DEFAULT_JUDGE,
    private readonly stepMs = 60_000,
    private readonly steps = 30,
  ) {
    this.reader = new CloudWatchMetricsReader(client);
  }

  async modelMetrics(
    model: string,
    versions: readonly number[],
    now: number,
    aliases?: Aliases,
  ): Promise<MetricsResponse> {
    const stepMs = this.stepMs;
    const end = Math.floor(now / stepMs) * stepMs;
    const start = end - this.steps * stepMs;
    const query = (id: string, metric: string, stat: string, version: number): MetricDataQuery => ({
      Id: id,
      MetricStat: {
        Metric: {
          Namespace: METRICS_NAMESPACE,
          MetricName: metric,
          Dimensions: [
            { Name: 'Model', Value: model },
            { Name: 'Version', Value: String(version) },
          ],
        },
        Period: stepMs / 1000,
        Stat: stat,
      },
      ReturnData: true,
    });
    const queries = versions.flatMap((v) => [
      query(`requests_${v}`, 'Requests', 'Sum', v),
      query(`errors_${v}`, 'ModelErrors', 'Sum', v),
      query(`p50_${v}`, 'Latency', 'p50', v),
      query(`p99_${v}`, 'Latency', 'p99', v),
    ]);
    const values = new Map<string, Map<number, number>>();
    let nextToken: string | undefined;
    if (queries.length > 0) {
      do {
        const page = await this.client.send(
          new GetMetricDataCommand({
            StartTime: new Date(start),
            EndTime: new Date(end),
            ScanBy: 'TimestampAscending',
            MetricDataQueries: queries,
            ...(nextToken === undefined ? {} : { NextToken: nextToken }),
          }),
        );
        for (const result of page.MetricDataResults ?? []) {
          const into = values.get(result.Id ?? '') ?? new Map<number, number>();
          values.set(result.Id ?? '', into);
          (result.Timestamps ?? []).forEach((time, i) => {
            const value = result.Values?.[i];
            if (value !== undefined) into.set(time.getTime(), value);
          });
        }
        nextToken = page.NextToken;
      } while (nextToken !== undefined);
    }
    const series = versions.map((version): VersionSeries => {
      const out = emptySeries(version);
      const pick = (id: string, t: number) => values.get(`${id}_${version}`)?.get(t);
      for (let t = start; t < end; t += stepMs) {
        const requests = pick('requests', t) ?? 0;
        const errors = pick('errors', t) ?? 0;
        out.t.push(t);
        out.requests.push(requests);
        out.modelErrors.push(errors);
        out.rps.push(requests / (stepMs / 1000));
        out.errorRate.push(requests > 0 ? errors / requests : null);
        out.p50.push(pick('p50', t) ?? null);
        out.p99.push(pick('p99', t) ?? null);
      }
      return out;
    });
    return {
      stepMs,
      start,
      end,
      versions: series,
      summary: summarize(series, 5, stepMs),
      rules: ruleLines(this.definitions),
      health: await healthOf(
        this.reader,
        this.definitions,
        this.judge,
        model,
        versions,
        now,
        aliases,
      ),
    };
  }
}
