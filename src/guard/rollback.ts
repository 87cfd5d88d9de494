import { errorMessage } from '../errors/index.ts';
import {
  type Aliases,
  type NoRollbackReason,
  planRollback,
  type Registry,
  type RollbackAction,
  type RollbackPlan,
  validateModelName,
} from '../registry/index.ts';

/** What fired: copied into the history record and the notification. */
export interface AlarmFacts {
  /** the alarm's name, as CloudWatch (or the local evaluator) calls it */
  name: string;
  /** the guard rule behind it, when known (`model-errors`, `latency`) */
  rule?: string;
  /** why it fired, in words */
  reason: string;
  /** the figures the decision rests on (datapoints, threshold, statistic) */
  metrics?: Record<string, unknown>;
}

export interface RollbackRequest {
  model: string;
  /** the version in alarm; without it the culprit is the candidate, else production */
  version?: number;
  alarm: AlarmFacts;
}

export type RollbackOutcome =
  | {
      changed: true;
      model: string;
      version: number;
      action: RollbackAction;
      /** the version production went back to */
      restored?: number;
      aliases: Aliases;
    }
  | { changed: false; model: string; version?: number; why: NoRollbackReason; detail: string };

/** Tells people what the guard did (SNS in the cloud). */
export interface Notifier {
  notify(notification: GuardNotification): Promise<void>;
}

export interface GuardNotification {
  /** one line, ≤ 100 characters (an SNS subject) */
  subject: string;
  text: string;
  model: string;
  version?: number;
}

export interface RollbackOptions {
  clock?: () => Date;
  /**
   * How long after its promotion a production version is still rolled back by an alarm; after it,
   * an alarm on production is left to people (reverting then could undo a deliberate change).
   * `undefined`: no limit (manual rollbacks). @default DEFAULT_WATCH_WINDOW_MS
   */
  watchWindowMs?: number | undefined;
  notifier?: Notifier;
  /** written as the history record's actor. @default 'guard' */
  actor?: string;
  /** where a failed notification is reported (the rollback itself stands). @default console.error */
  onNotifyError?: (err: unknown) => void;
}

/** One hour: long enough for a slow regression to show, short enough not to undo old decisions. */
export const DEFAULT_WATCH_WINDOW_MS = 60 * 60 * 1000;

/**
 * Rolls back the model in alarm, and only it: race-safe through `updateAliases` (If-Match), and
 * idempotent (the same alarm delivered again finds the version rolled back and changes nothing,
 * so exactly one history record and one notification follow a rollback).
 */
export async function rollback(
  request: RollbackRequest,
  registry: Registry,
  options: RollbackOptions = {},
): Promise<RollbackOutcome> {
  const { model, alarm } = request;
  validateModelName(model);
  const now = (options.clock ?? (() => new Date()))();
  const watchWindowMs =
    'watchWindowMs' in options ? options.watchWindowMs : DEFAULT_WATCH_WINDOW_MS;
  const decided: { plan?: RollbackPlan } = {};
  const update = await registry.updateAliases(model, (current) => {
    decided.plan = planRollback(current, request.version, { now, watchWindowMs });
    return decided.plan.next;
  });
  const plan = decided.plan;
  // updateAliases calls its update function at least once before it returns.
  if (plan === undefined) throw new Error('updateAliases returned without planning');
  if (plan.next === undefined) {
    return {
      changed: false,
      model,
      ...versionOf(plan.version),
      why: plan.why,
      detail: plan.detail,
    };
  }
  const what =
    plan.action === 'dropped-candidate'
      ? `candidate version ${plan.version} dropped`
      : `production reverted from version ${plan.version} to ${plan.restored}`;
  await registry.appendHistory({
    model,
    event: 'rolled-back',
    version: plan.version,
    at: now.toISOString(),
    actor: options.actor ?? 'guard',
    reason: `${alarm.name}: ${alarm.reason}`,
    details: {
      action: plan.action,
      ...(plan.restored === undefined ? {} : { restored: plan.restored }),
      alarm: {
        name: alarm.name,
        ...(alarm.rule === undefined ? {} : { rule: alarm.rule }),
        reason: alarm.reason,
        ...(alarm.metrics === undefined ? {} : { metrics: alarm.metrics }),
      },
    },
  });
  if (options.notifier !== undefined) {
    try {
      await options.notifier.notify({
        subject: `maas: ${model} v${plan.version} rolled back`.slice(0, 100),
        text: `${model}: ${what} by ${options.actor ?? 'guard'} on ${alarm.name}.\n${alarm.reason}`,
        model,
        version: plan.version,
      });
    } catch (err) {
      (options.onNotifyError ?? ((e) => console.error(`notification failed: ${errorMessage(e)}`)))(
        err,
      );
    }
  }
  return {
    changed: true,
    model,
    version: plan.version,
    action: plan.action,
    ...(plan.restored === undefined ? {} : { restored: plan.restored }),
    aliases: update.aliases ?? plan.next,
  };
}

const versionOf = (version: number | undefined): { version?: number } =>
  version === undefined ? {} : { version };
