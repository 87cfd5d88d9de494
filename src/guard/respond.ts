import { isValidModelName } from '../registry/index.ts';
import type { AlarmDefinition } from './alarms.ts';
import type { GuardDeps } from './deps.ts';
import { checkHealth, evaluationMetrics, type HealthReport } from './health.ts';
import { type PromoteDueOutcome, promoteDue } from './promote.ts';
import { type RollbackOutcome, rollback } from './rollback.ts';

/** An alarm state change, whatever carried it (CloudWatch, the local evaluator). */
export interface AlarmNotice {
  alarmName: string;
  /** ALARM, OK or INSUFFICIENT_DATA */
  state: string;
  reason: string;
  /** `Model` and `Version` (or `Variant`) of the series in alarm */
  dimensions: Readonly<Record<string, string>>;
}

export type AlarmResponse =
  | { result: 'ignored'; why: string }
  /** the rule does not hold on CloudWatch's exact figures (too few requests, p99 under the bar) */
  | { result: 'unconfirmed'; model: string; version: number; health: HealthReport }
  | { result: 'handled'; outcome: RollbackOutcome };

const VERSION = /^[1-9]\d{0,8}$/;

/**
 * The version a series names: its `Version`, or the version its `Variant` routes to, or (an alarm
 * per model) the culprit: the candidate if there is one, else production. A string says why none.
 */
async function versionInAlarm(
  deps: GuardDeps,
  model: string,
  dimensions: Readonly<Record<string, string>>,
): Promise<number | string> {
  const raw = dimensions.Version;
  if (raw !== undefined)
    return VERSION.test(raw) ? Number(raw) : `Version "${raw}" is not a version`;
  const aliases = (await deps.registry.getAliases(model))?.aliases;
  const variant = dimensions.Variant;
  const version =
    variant === undefined
      ? (aliases?.candidate?.version ?? aliases?.production)
      : variant === 'candidate'
        ? aliases?.candidate?.version
        : variant === 'production'
          ? aliases?.production
          : undefined;
  return version ?? `model ${model} has no ${variant ?? 'serving'} version to roll back`;
}

/** `<prefix><rule>` → the rule; `undefined` for an alarm the guard did not define. */
const ruleOf = (deps: GuardDeps, alarmName: string): AlarmDefinition | undefined =>
  deps.settings.definitions.find((def) => alarmName === `${deps.settings.alarmPrefix}${def.name}`);

/**
 * What rollback does with an alarm: find the model and version in alarm (a `Variant` names the
 * version through the aliases), confirm the guard's rule on the exact per-period figures (the
 * Metrics Insights alarm cannot count requests nor compute p99), then roll back that model alone.
 */
export async function respondToAlarm(notice: AlarmNotice, deps: GuardDeps): Promise<AlarmResponse> {
  if (notice.state !== 'ALARM') return { result: 'ignored', why: `state is ${notice.state}` };
  const model = notice.dimensions.Model;
  if (model === undefined || !isValidModelName(model)) {
    return {
      result: 'ignored',
      why: `the alarm names no model (dimensions ${JSON.stringify(notice.dimensions)})`,
    };
  }
  const version = await versionInAlarm(deps, model, notice.dimensions);
  if (typeof version === 'string') return { result: 'ignored', why: version };
  const now = (deps.clock ?? (() => new Date()))();
  const rule = ruleOf(deps, notice.alarmName);
  let metrics: Record<string, unknown> | undefined;
  let reason = notice.reason;
  if (rule !== undefined) {
    const health = await checkHealth(deps.metrics, [rule], model, version, now.getTime());
    const evaluation = health.evaluations[0];
    if (health.state !== 'ALARM' || evaluation === undefined) {
      return { result: 'unconfirmed', model, version, health };
    }
    metrics = evaluationMetrics(rule, evaluation);
    reason = evaluation.reason;
  }
  const outcome = await rollback(
    {
      model,
      version,
      alarm: {
        name: notice.alarmName,
        ...(rule === undefined ? {} : { rule: rule.name }),
        reason,
        ...(metrics === undefined ? {} : { metrics }),
      },
    },
    deps.registry,
    {
      clock: () => now,
      watchWindowMs: deps.settings.watchWindowMs,
      ...(deps.notifier === undefined ? {} : { notifier: deps.notifier }),
    },
  );
  return { result: 'handled', outcome };
}

export interface ScheduleResult {
  promotions: PromoteDueOutcome[];
  /** candidates held by a rule in ALARM, rolled back here in case the alarm's action was lost */
  rollbacks: RollbackOutcome[];
}

/**
 * The promote schedule: candidates whose bake time is over are promoted when every rule is OK on
 * the exact figures; a candidate whose rule is in ALARM is rolled back as its alarm would have.
 */
export async function runPromoteSchedule(deps: GuardDeps): Promise<ScheduleResult> {
  const clock = deps.clock ?? (() => new Date());
  const promotions = await promoteDue(
    deps.registry,
    (model, version) =>
      checkHealth(deps.metrics, deps.settings.definitions, model, version, clock().getTime()),
    { clock },
  );
  const rollbacks: RollbackOutcome[] = [];
  for (const held of promotions) {
    if (held.result !== 'held') continue;
    const firing = held.health.evaluations.find((e) => e.state === 'ALARM');
    const rule = deps.settings.definitions.find((def) => def.name === firing?.rule);
    if (firing === undefined || rule === undefined) continue;
    rollbacks.push(
      await rollback(
        {
          model: held.model,
          version: held.version,
          alarm: {
            name: `${deps.settings.alarmPrefix}${rule.name}`,
            rule: rule.name,
            reason: firing.reason,
            metrics: evaluationMetrics(rule, firing),
          },
        },
        deps.registry,
        {
          clock,
          watchWindowMs: deps.settings.watchWindowMs,
          actor: 'promote',
          ...(deps.notifier === undefined ? {} : { notifier: deps.notifier }),
        },
      ),
    );
  }
  return { promotions, rollbacks };
}
