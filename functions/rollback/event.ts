import { MaasError } from '../../src/errors/index.ts';

/**
 * The alarm events that reach rollback, as AWS documents them:
 * - an alarm action invoking the function: `{ source, alarmArn, alarmData: { alarmName, state,
 *   configuration, ... } }`; for a multi time series (Metrics Insights `GROUP BY`) alarm, one
 *   invocation per contributor, with `alarmData.alarmContributor: { id, attributes }`;
 * - an EventBridge rule: `{ 'detail-type': 'CloudWatch Alarm State Change' | 'CloudWatch Alarm
 *   Contributor State Change', detail: { ...the same fields } }`.
 * A single-metric alarm names its series in `configuration.metrics[].metricStat.metric.dimensions`;
 * a contributor in `alarmContributor.attributes`.
 */
export interface AlarmContributor {
  id: string;
  attributes: Record<string, string>;
}

export interface AlarmState {
  value: string;
  reason: string;
  timestamp?: string;
  reasonData?: string;
}

export interface AlarmMetricQuery {
  id: string;
  returnData?: boolean;
  period?: number;
  expression?: string;
  label?: string;
  metricStat?: {
    metric: { namespace: string; name: string; dimensions?: Record<string, string> };
    period: number;
    stat: string;
  };
}

export interface AlarmData {
  alarmName: string;
  alarmContributor?: AlarmContributor;
  state: AlarmState;
  previousState?: AlarmState;
  configuration?: { description?: string; metrics?: AlarmMetricQuery[] };
}

/** What CloudWatch sends a Lambda alarm action. */
export interface AlarmActionEvent {
  source: 'aws.cloudwatch';
  alarmArn: string;
  accountId: string;
  time: string;
  region: string;
  alarmData: AlarmData;
}

/** What an EventBridge rule on CloudWatch alarm events delivers. */
export interface AlarmStateChangeEvent {
  version: string;
  id: string;
  'detail-type': 'CloudWatch Alarm State Change' | 'CloudWatch Alarm Contributor State Change';
  source: 'aws.cloudwatch';
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: AlarmData;
}

export type AlarmEvent = AlarmActionEvent | AlarmStateChangeEvent;

/** The parts of an alarm event rollback acts on. */
export interface AlarmSignal {
  alarmName: string;
  /** ALARM, OK or INSUFFICIENT_DATA */
  state: string;
  reason: string;
  timestamp?: string;
  /** the contributor's attributes, or the single metric's dimensions (Model, Version, Variant) */
  dimensions: Record<string, string>;
  contributorId?: string;
}

export class InvalidAlarmEventError extends MaasError {
  constructor(what: string) {
    super(
      'InvalidAlarmEvent',
      `the rollback function received ${what}; it expects a CloudWatch alarm action or an EventBridge CloudWatch alarm state change event`,
    );
  }
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const strings = (value: unknown): Record<string, string> => {
  if (!isObject(value)) return {};
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) if (typeof v === 'string') out[key] = v;
  return out;
};

/** Dimensions of the first metric that names a model, preferring the one the alarm returns. */
const metricDimensions = (configuration: unknown): Record<string, string> => {
  const metrics =
    isObject(configuration) && Array.isArray(configuration.metrics) ? configuration.metrics : [];
  const dimensionSets = metrics
    .filter(isObject)
    .sort((a, b) => Number(b.returnData === true) - Number(a.returnData === true))
    .map((query) => {
      const stat = isObject(query.metricStat) ? query.metricStat : {};
      return strings(isObject(stat.metric) ? stat.metric.dimensions : undefined);
    });
  return dimensionSets.find((dims) => dims.Model !== undefined) ?? dimensionSets[0] ?? {};
};

/** Reads either event form; InvalidAlarmEventError for anything else. */
export function parseAlarmEvent(event: unknown): AlarmSignal {
  if (!isObject(event)) throw new InvalidAlarmEventError('something that is not a JSON object');
  const data = isObject(event.alarmData)
    ? event.alarmData
    : isObject(event.detail)
      ? event.detail
      : undefined;
  if (data === undefined) {
    throw new InvalidAlarmEventError('an object with neither "alarmData" nor "detail"');
  }
  const state = isObject(data.state) ? data.state : undefined;
  if (
    typeof data.alarmName !== 'string' ||
    state === undefined ||
    typeof state.value !== 'string'
  ) {
    throw new InvalidAlarmEventError('an alarm event without "alarmName" or "state.value"');
  }
  const contributor = isObject(data.alarmContributor) ? data.alarmContributor : undefined;
  return {
    alarmName: data.alarmName,
    state: state.value,
    reason: typeof state.reason === 'string' ? state.reason : '',
    ...(typeof state.timestamp === 'string' ? { timestamp: state.timestamp } : {}),
    dimensions:
      contributor === undefined
        ? metricDimensions(data.configuration)
        : strings(contributor.attributes),
    ...(contributor !== undefined && typeof contributor.id === 'string'
      ? { contributorId: contributor.id }
      : {}),
  };
}
