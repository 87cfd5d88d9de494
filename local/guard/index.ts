import { createHash } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { createPromoteHandler } from '../../functions/promote/handler.ts';
import { type AlarmActionEvent, createRollbackHandler } from '../../functions/rollback/handler.ts';
import { definedOnly } from '../../src/config/index.ts';
import {
  type AlarmDefinition,
  type AlarmResponse,
  evaluateTrigger,
  evaluationWindow,
  type GuardDeps,
  type GuardSettings,
  guardSettings,
  periodMs,
  type ScheduleResult,
  type TriggerEvaluation,
} from '../../src/guard/index.ts';
import { parseEmfLine } from '../../src/metrics/index.ts';
import type { Registry } from '../../src/registry/index.ts';
import { LocalMetricsStore, type SeriesKey } from './metrics-store.ts';

export { LocalMetricsStore, type SeriesKey } from './metrics-store.ts';

/** Local time runs this much faster than CloudWatch's unless `MAAS_GUARD_TIME_SCALE` says otherwise. */
export const LOCAL_TIME_SCALE = 1 / 60;

/**
 * Locally a log line reaches the guard at once: a request started in a period may still answer
 * until the local API's invocation time-out (`MAAS_INVOKE_TIMEOUT_MS`, 30 s) has passed.
 */
export const localSettleSeconds = (env: Readonly<Record<string, string | undefined>>): number =>
  Number(env.MAAS_INVOKE_TIMEOUT_MS ?? 30_000) / 1000 + 0.5;

export interface LocalGuardOptions {
  registry: Registry;
  /** default: from `env` (`MAAS_GUARD_TIME_SCALE` defaulting to LOCAL_TIME_SCALE, thresholds, ...) */
  settings?: GuardSettings;
  /** read for the settings. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** how often the rules are evaluated. @default a quarter of the shortest period */
  evaluateEveryMs?: number;
  /** how often promote runs; 0 = never (call `promoteNow`). @default settings.promoteEveryMs */
  promoteEveryMs?: number;
  clock?: () => Date;
  /** the handlers' logs. @default their own Powertools loggers (JSON on stdout) */
  logger?: Logger;
  /** every alarm transition and what rollback answered */
  onAlarm?: (transition: AlarmTransition) => void;
  /** every promote run's result */
  onPromote?: (result: ScheduleResult) => void;
  /** a rollback or promote invocation that threw */
  onError?: (err: unknown) => void;
}

export interface AlarmTransition {
  rule: string;
  alarmName: string;
  model: string;
  version: number;
  state: 'OK' | 'ALARM';
  evaluation: TriggerEvaluation;
  /** rollback's answer, for transitions to ALARM */
  response?: AlarmResponse;
}

export interface LocalGuard {
  /** feeds one line a handler instance printed; give it to the local API's `onOutput` */
  onOutput(line: string): void;
  /** environment the predict instances need for their EMF lines to reach the guard */
  readonly handlerEnv: Readonly<Record<string, string>>;
  readonly settings: GuardSettings;
  readonly metrics: LocalMetricsStore;
  /** series currently in ALARM, as `<rule> <model>@<version>` */
  alarms(): string[];
  /** evaluates now and waits for the rollbacks it starts */
  evaluateNow(): Promise<void>;
  promoteNow(): Promise<ScheduleResult>;
  /** stops the timers and waits for invocations in flight */
  close(): Promise<void>;
}

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';

/** A contributor id as CloudWatch's: 16 hex characters, stable per attribute set. */
const contributorId = (attributes: Record<string, string>): string =>
  createHash('sha256').update(JSON.stringify(attributes)).digest('hex').slice(0, 16);

/** The event CloudWatch sends a Lambda alarm action when one contributor goes to ALARM. */
export const contributorAlarmEvent = (
  def: AlarmDefinition,
  alarmName: string,
  key: SeriesKey,
  evaluation: TriggerEvaluation,
  at: Date,
): AlarmActionEvent => {
  const attributes = { Model: key.model, Version: String(key.version) };
  return {
    source: 'aws.cloudwatch',
    alarmArn: `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${alarmName}`,
    accountId: ACCOUNT,
    time: at.toISOString(),
    region: REGION,
    alarmData: {
      alarmName,
      alarmContributor: { id: contributorId(attributes), attributes },
      state: { value: 'ALARM', reason: evaluation.reason, timestamp: at.toISOString() },
      configuration: {
        description: def.description,
        metrics: [{ id: 'm1', expression: def.query, returnData: true, period: def.periodSeconds }],
      },
    },
  };
};

/**
 * The guard of the local stack, as CloudWatch and EventBridge are in the cloud: it reads the
 * predict instances' EMF lines, evaluates each rule's alarm trigger per model version as the
 * Metrics Insights alarm does (state changes only), invokes the rollback handler with a contributor
 * alarm event when a version goes to ALARM, and runs the promote handler on a timer, which judges
 * every watched version again. Both handlers get the local figures where the cloud reads
 * CloudWatch.
 */
export function startLocalGuard(options: LocalGuardOptions): LocalGuard {
  const env = options.env ?? process.env;
  const settings =
    options.settings ??
    guardSettings({
      MAAS_GUARD_TIME_SCALE: String(LOCAL_TIME_SCALE),
      MAAS_GUARD_SETTLE_SECONDS: String(localSettleSeconds(env)),
      ...definedOnly(env),
    });
  const clock = options.clock ?? (() => new Date());
  // as far back as any rule looks: the slow rule's window ends a settle time ago and spans two
  const longest = Math.max(
    ...settings.definitions.map((d) => periodMs(d) * (d.evaluationPeriods + 1)),
    ...settings.definitions.map((d) => 3 * settings.settleMs + 2 * periodMs(d)),
  );
  const metrics = new LocalMetricsStore(longest);
  const deps: GuardDeps = { registry: options.registry, metrics, settings, clock };
  const handlerOptions = {
    deps: () => deps,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  };
  const rollbackHandler = createRollbackHandler(handlerOptions);
  const promoteHandler = createPromoteHandler(handlerOptions);
  const onError = options.onError ?? ((err: unknown) => console.error('local guard:', err));
  const states = new Map<string, 'OK' | 'ALARM'>();
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work)).catch(() => undefined);
    return work;
  };
  let closed = false;

  const transition = async (
    def: AlarmDefinition,
    key: SeriesKey,
    evaluation: TriggerEvaluation,
    at: Date,
  ): Promise<void> => {
    const alarmName = `${settings.alarmPrefix}${def.name}`;
    const base = { rule: def.name, alarmName, ...key, state: evaluation.state, evaluation };
    if (evaluation.state !== 'ALARM') {
      options.onAlarm?.(base);
      return;
    }
    try {
      const response = await rollbackHandler(
        contributorAlarmEvent(def, alarmName, key, evaluation, at),
      );
      options.onAlarm?.({ ...base, response });
    } catch (err) {
      onError(err);
    }
  };

  const evaluateNow = async (): Promise<void> => {
    const at = clock();
    const now = at.getTime();
    metrics.prune(now);
    const started: Promise<void>[] = [];
    const seen = new Set<string>();
    for (const key of metrics.keys()) {
      for (const def of settings.definitions) {
        const window = evaluationWindow(def, now);
        const evaluation = evaluateTrigger(
          def,
          await metrics.datapoints(def, key.model, key.version, window),
          window.end,
        );
        const id = `${def.name} ${key.model}@${key.version}`;
        seen.add(id);
        const previous = states.get(id) ?? 'OK';
        if (evaluation.state === previous) continue;
        states.set(id, evaluation.state);
        started.push(track(transition(def, key, evaluation, at)));
      }
    }
    // A series without data left is no contributor any more, as in CloudWatch.
    for (const id of states.keys()) if (!seen.has(id)) states.delete(id);
    await Promise.all(started);
  };

  const promoteNow = (): Promise<ScheduleResult> =>
    track(
      promoteHandler({ source: 'aws.events', 'detail-type': 'Scheduled Event' }).then((result) => {
        options.onPromote?.(result);
        return result;
      }),
    );

  const evaluateEvery =
    options.evaluateEveryMs ??
    Math.max(50, Math.min(...settings.definitions.map((d) => periodMs(d))) / 4);
  let evaluating = false;
  const evaluator = setInterval(() => {
    if (evaluating || closed) return;
    evaluating = true;
    evaluateNow()
      .catch(onError)
      .finally(() => {
        evaluating = false;
      });
  }, evaluateEvery);
  const promoteEvery = options.promoteEveryMs ?? settings.promoteEveryMs;
  const promoter =
    promoteEvery > 0
      ? setInterval(() => {
          if (!closed) promoteNow().catch(onError);
        }, promoteEvery)
      : undefined;

  return {
    onOutput(line: string): void {
      const arrivedAt = clock().getTime();
      for (const record of parseEmfLine(line)) metrics.add(record, arrivedAt);
    },
    handlerEnv: { POWERTOOLS_METRICS_DISABLED: 'false' },
    settings,
    metrics,
    alarms: () => [...states].filter(([, state]) => state === 'ALARM').map(([id]) => id),
    evaluateNow,
    promoteNow,
    async close(): Promise<void> {
      closed = true;
      clearInterval(evaluator);
      if (promoter !== undefined) clearInterval(promoter);
      await Promise.allSettled([...inFlight]);
    },
  };
}
