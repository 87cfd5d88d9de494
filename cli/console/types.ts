/**
 * What the console's server answers and its page reads: one set of types for both sides, so a
 * field renamed on one side fails the type check of the other.
 */
import type { VersionSeries } from '../../local/guard/figures.ts';
import type { Aliases, HistoryRecord, Manifest } from '../../src/registry/types.ts';

export type { Aliases, HistoryRecord, Manifest, VersionSeries };

export type ModelStatus =
  | 'healthy'
  | 'canary baking'
  | 'breaching'
  | 'rolled back'
  | 'no version'
  | 'unreadable';

export interface TargetInfo {
  kind: 'local' | 'stack';
  /** the HTTP API the console sends inference to */
  api: string;
  bucket: string;
  /** S3 endpoint, unset for AWS S3 itself */
  s3?: string;
  stackName?: string;
  /** where the figures come from */
  metrics: 'local' | 'remote' | 'cloudwatch';
  /** `GET /metrics` answers Prometheus text on this console */
  prometheus: boolean;
}

export interface Summary {
  /** requests per second over the summary window */
  rps: number | null;
  errorRate: number | null;
}

export interface ModelRow extends Summary {
  name: string;
  production?: number;
  candidate?: { version: number; weight: number; bakeUntil: string };
  status: ModelStatus;
  /** why: the rule breaching, the rollback's reason, the rejection's */
  statusDetail?: string;
  /** requests per step over the chart window, all versions together */
  spark: number[];
}

export interface ModelsResponse {
  target: TargetInfo;
  models: ModelRow[];
  /** the figures could not be read; the registry could */
  metricsError?: string;
  now: string;
}

export interface VersionInfo {
  version: number;
  manifest?: Manifest;
  /** the manifest could not be read: why */
  error?: string;
  /** production, candidate, known-good, rolled back */
  labels: string[];
}

export interface ModelResponse {
  name: string;
  aliases?: Aliases;
  versions: VersionInfo[];
  status: ModelStatus;
  statusDetail?: string;
  /** problems reading parts of the model that the page shows beside what could be read */
  problems: string[];
}

export interface HistoryEntry {
  key: string;
  record?: HistoryRecord;
  /** the record could not be read or parsed */
  error?: string;
}

export interface HistoryPage {
  entries: HistoryEntry[];
  total: number;
  /** pass as `before` for the next (older) page */
  nextBefore?: string;
}

export interface RuleLine {
  rule: string;
  /** the series the threshold is drawn on */
  series: 'errorRate' | 'p99' | 'p50';
  threshold: number;
  description: string;
}

export interface RuleHealth {
  rule: string;
  state: 'OK' | 'ALARM';
  breaching: number;
  datapointsToAlarm: number;
  evaluationPeriods: number;
}

export interface VersionHealth {
  version: number;
  state: 'OK' | 'ALARM';
  rules: RuleHealth[];
}

export interface MetricsResponse {
  stepMs: number;
  start: number;
  end: number;
  versions: VersionSeries[];
  summary: Summary;
  rules: RuleLine[];
  health: VersionHealth[];
  /** the figures could not be read: why (the charts stay empty) */
  error?: string;
}

export interface UploadResponse {
  model: string;
  key: string;
  etag: string;
  bytes: number;
  /** pass back to `/outcome` so only records written after the upload answer it */
  afterKey?: string;
  sinceMs?: number;
}

export interface OutcomeResponse {
  /** undefined while ingest is still at work */
  outcome?: HistoryRecord;
}

export interface InferResponse {
  status: number;
  latencyMs: number;
  version?: string;
  variant?: string;
  body: unknown;
}

export interface ActionResponse {
  message: string;
  outcome: unknown;
}

export interface ErrorBody {
  error: string;
}

export interface ExampleResponse {
  version: number;
  /** a V2 request body, pretty-printed */
  body: string;
  /** `samples`: the first sample ingest warmed the version up on; `signature`: made up from it */
  from: 'samples' | 'signature';
}
