import { ConfigError, type Env, envNumber, envText as text } from '../config/index.ts';
import {
  type AlarmDefinition,
  type AlarmOverride,
  alarmDefinitions,
  DEFAULT_ALARM_DEFINITIONS,
} from './alarms.ts';
import { DEFAULT_WATCH_WINDOW_MS } from './rollback.ts';

/**
 * What the rollback and promote functions (and the local guard) read from the environment. The
 * CDK stack must set the same `MAAS_ALARM_THRESHOLDS` its alarms were built with, so the
 * functions confirm alarms against the thresholds that fired them.
 */
export interface GuardSettings {
  /** the rules, with `MAAS_ALARM_THRESHOLDS` and `MAAS_GUARD_TIME_SCALE` applied */
  definitions: AlarmDefinition[];
  /** `MAAS_WATCH_MINUTES` (scaled like the periods): how long a new production version is watched */
  watchWindowMs: number;
  /** `MAAS_GUARD_TIME_SCALE`: 1 in the cloud; the local stack shortens minutes to seconds */
  timeScale: number;
  /** `MAAS_PROMOTE_EVERY_MINUTES` (scaled): how often the local timer runs promote */
  promoteEveryMs: number;
  /** `MAAS_GUARD_ALARM_PREFIX`: the CDK stack names each rule's alarm `<prefix><rule>` */
  alarmPrefix: string;
  /**
   * `MAAS_GUARD_SETTLE_SECONDS` (real time, not scaled): how long after a period ends a request
   * started in it may still answer (the predict time-out plus the time its log line takes to
   * become a metric); only then do its unfinished requests count as failures
   */
  settleMs: number;
  /**
   * `MAAS_GUARD_MIN_EVIDENCE`: routed requests a candidate must have *started* over the rules'
   * window before the schedule promotes it; fewer, and it stays a candidate and says why
   */
  minEvidence: number;
  /** `MAAS_ALERT_TOPIC_ARN`: where rollbacks are announced, when set */
  alertTopicArn?: string;
}

const positive = (env: Env, name: string, fallback: number): number =>
  envNumber(env, name, fallback, { min: 0, exclusiveMin: true });

/** `{"latency": 800}`: threshold overrides by rule name, the same the CDK context carries. */
const thresholds = (env: Env): Record<string, AlarmOverride> => {
  const raw = text(env, 'MAAS_ALARM_THRESHOLDS');
  if (raw === undefined) return {};
  const expected = 'a JSON object of rule name to number, e.g. {"latency": 800}';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError('MAAS_ALARM_THRESHOLDS', raw, expected);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('MAAS_ALARM_THRESHOLDS', raw, expected);
  }
  const overrides: Record<string, AlarmOverride> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== 'number') throw new ConfigError('MAAS_ALARM_THRESHOLDS', raw, expected);
    overrides[name] = { threshold: value };
  }
  return overrides;
};

/** 15 s predict time-out + 60 s for a log line to become a CloudWatch metric. */
export const DEFAULT_SETTLE_SECONDS = 75;

/** 5 periods × 20 requests: what the rules need to judge a candidate at all. */
export const DEFAULT_MIN_EVIDENCE = 100;

export const DEFAULT_ALARM_PREFIX = 'maas-guard-';

/** The CDK stack's default schedule (`maas:promoteEveryMinutes`). */
export const DEFAULT_PROMOTE_EVERY_MINUTES = 5;

const minRequests = (env: Env): number | undefined =>
  envNumber(env, 'MAAS_GUARD_MIN_REQUESTS', undefined, { min: 0, integer: true });

/** Reads and validates the guard's settings; ConfigError names the first bad variable. */
export function guardSettings(
  env: Env = process.env,
  extra: { overrides?: Record<string, AlarmOverride> } = {},
): GuardSettings {
  const timeScale = positive(env, 'MAAS_GUARD_TIME_SCALE', 1);
  const watchMinutes = positive(env, 'MAAS_WATCH_MINUTES', DEFAULT_WATCH_WINDOW_MS / 60_000);
  const promoteMinutes = positive(env, 'MAAS_PROMOTE_EVERY_MINUTES', DEFAULT_PROMOTE_EVERY_MINUTES);
  const byThreshold = thresholds(env);
  const floor = minRequests(env);
  const overrides: Record<string, AlarmOverride> = {};
  for (const def of DEFAULT_ALARM_DEFINITIONS) {
    // The slow rule's minimum counts started requests and is meant to stay below the others.
    if (floor !== undefined)
      overrides[def.name] = {
        minRequests: def.kind === 'slow' ? Math.min(floor, def.minRequests) : floor,
      };
  }
  for (const [name, override] of Object.entries(byThreshold)) {
    overrides[name] = { ...overrides[name], ...override };
  }
  for (const [name, override] of Object.entries(extra.overrides ?? {})) {
    overrides[name] = { ...overrides[name], ...override };
  }
  const alertTopicArn = text(env, 'MAAS_ALERT_TOPIC_ARN');
  return {
    definitions: alarmDefinitions({ timeScale, overrides }),
    watchWindowMs: watchMinutes * 60_000 * timeScale,
    timeScale,
    promoteEveryMs: promoteMinutes * 60_000 * timeScale,
    settleMs:
      envNumber(env, 'MAAS_GUARD_SETTLE_SECONDS', DEFAULT_SETTLE_SECONDS, { min: 0 }) * 1000,
    minEvidence: envNumber(env, 'MAAS_GUARD_MIN_EVIDENCE', DEFAULT_MIN_EVIDENCE, {
      min: 0,
      integer: true,
    }),
    alarmPrefix: text(env, 'MAAS_GUARD_ALARM_PREFIX') ?? DEFAULT_ALARM_PREFIX,
    ...(alertTopicArn === undefined ? {} : { alertTopicArn }),
  };
}
