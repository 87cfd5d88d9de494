import {
  type Aliases,
  heldCandidate,
  isValidModelName,
  normalizeAliases,
  watchedProduction,
} from '../registry/index.ts';
import type { AlarmDefinition } from './alarms.ts';
import type { GuardDeps } from './deps.ts';
import { type BaselineRef, checkHealth, evaluationMetrics, type HealthReport } from './health.ts';
import { type PromoteDueOutcome, promoteDue } from './promote.ts';
import { type RollbackOutcome, rollback } from './rollback.ts';

/** An alarm state change, whatever carried it (CloudWatch, the local evaluator). */
export interface AlarmNotice {
  alarmName: string;
  /** ALARM, OK or INSUFFICIENT_DATA */
  state: string;
  reason: string;
  /** `Model` and `Version` (or `Variant`) of the series in alarm; empty when the event named none */
  dimensions: Readonly<Record<string, string>>;
}

export type AlarmResponse =
  | { result: 'ignored'; why: string }
  /** the rules do not hold on the exact figures (too few requests, no worse than its baseline) */
  | { result: 'unconfirmed'; model: string; version: number; health: HealthReport }
  | { result: 'handled'; outcome: RollbackOutcome }
  /** the event named no series the guard knows: every watched version was judged again */
  | { result: 'reevaluated'; why: string; review: Review };

const VERSION = /^[1-9]\d{0,8}$/;

/**
 * Who a version is judged against, from the aliases: a candidate against production, production
 * within its watch window against its previous known-good version (by shadow), a first version
 * against nothing. `undefined`: the guard does not judge it (pinned only, outside its window).
 */
export const baselineFor = (
  aliases: Aliases | undefined,
  version: number,
  now: Date,
  watchWindowMs: number,
): BaselineRef | undefined => {
  if (aliases === undefined) return undefined;
  const current = normalizeAliases(aliases);
  if (current.candidate?.version === version) {
    return current.production === undefined || current.production === version
      ? { kind: 'none' }
      : { kind: 'production', version: current.production };
  }
  const watched = watchedProduction(current, now, watchWindowMs);
  if (watched?.version !== version) return undefined;
  // judged as production only on the periods since its promotion (before, it was a candidate)
  const since = Date.parse(current.promotedAt ?? '');
  return watched.previous === undefined
    ? { kind: 'none' }
    : {
        kind: 'shadow',
        version: watched.previous,
        ...(Number.isNaN(since) ? {} : { since }),
      };
};

const judgeVersion = (
  deps: GuardDeps,
  model: string,
  version: number,
  baseline: BaselineRef,
  now: Date,
): Promise<HealthReport> =>
  checkHealth(deps.metrics, deps.settings, model, version, baseline, now.getTime());

/** Rolls back a version whose rules are in ALARM, with the first rule in ALARM as the alarm. */
const rollbackOnReport = async (
  deps: GuardDeps,
  report: HealthReport,
  now: Date,
  alarm: { name?: string; actor?: string },
): Promise<RollbackOutcome | undefined> => {
  const firing = report.evaluations.find((e) => e.state === 'ALARM');
  const rule = deps.settings.definitions.find((def) => def.name === firing?.rule);
  if (firing === undefined || rule === undefined) return undefined;
  return rollback(
    {
      model: report.model,
      version: report.version,
      alarm: {
        name: alarm.name ?? `${deps.settings.alarmPrefix}${rule.name}`,
        rule: rule.name,
        reason: firing.reason,
        metrics: evaluationMetrics(rule, firing, report.baseline),
      },
    },
    deps.registry,
    {
      clock: () => now,
      watchWindowMs: deps.settings.watchWindowMs,
      ...(alarm.actor === undefined ? {} : { actor: alarm.actor }),
      ...(deps.notifier === undefined ? {} : { notifier: deps.notifier }),
    },
  );
};

/** What one pass over the watched versions did. */
export interface Review {
  /** every version judged, with its report */
  judged: HealthReport[];
  rollbacks: RollbackOutcome[];
}

/**
 * Judges every candidate and every production version within its watch window, and rolls back
 * those in ALARM: the schedule's safety net for alarm actions CloudWatch never repeats (it acts on
 * state changes only) and for hangs no alarm query can see.
 */
export async function reviewWatched(
  deps: GuardDeps,
  options: { actor: string; candidates: boolean },
): Promise<Review> {
  const now = (deps.clock ?? (() => new Date()))();
  const judged: HealthReport[] = [];
  const rollbacks: RollbackOutcome[] = [];
  for (const model of await deps.registry.listModels()) {
    const aliases = (await deps.registry.getAliases(model))?.aliases;
    if (aliases === undefined) continue;
    const versions = [
      aliases.production,
      options.candidates ? aliases.candidate?.version : undefined,
    ];
    for (const version of versions) {
      if (version === undefined) continue;
      const baseline = baselineFor(aliases, version, now, deps.settings.watchWindowMs);
      if (baseline === undefined) continue;
      const report = await judgeVersion(deps, model, version, baseline, now);
      judged.push(report);
      const outcome = await rollbackOnReport(deps, report, now, { actor: options.actor });
      if (outcome !== undefined) rollbacks.push(outcome);
    }
  }
  return { judged, rollbacks };
}

/** `<prefix><rule>` → the rule; `undefined` for an alarm the guard did not define. */
const ruleOf = (deps: GuardDeps, alarmName: string): AlarmDefinition | undefined =>
  deps.settings.definitions.find((def) => alarmName === `${deps.settings.alarmPrefix}${def.name}`);

/**
 * The version a series names: its `Version`, or the version its `Variant` routes to. A string
 * says why there is none.
 */
const versionInAlarm = (
  aliases: Aliases | undefined,
  model: string,
  dimensions: Readonly<Record<string, string>>,
): number | string => {
  const raw = dimensions.Version;
  if (raw !== undefined) {
    return VERSION.test(raw) ? Number(raw) : `Version "${raw}" is not a version`;
  }
  const variant = dimensions.Variant;
  const version =
    variant === 'candidate'
      ? aliases?.candidate?.version
      : variant === 'production'
        ? aliases?.production
        : undefined;
  return version ?? `model ${model} has no ${variant ?? 'named'} version in alarm`;
};

/**
 * What rollback does with an alarm: find the model version in alarm, judge the guard's rules on
 * the exact figures against its baseline (the Metrics Insights trigger cannot count requests,
 * compute percentiles or compare with production), then roll back that model alone. An event
 * that names no model version (a composite alarm, a shape AWS may add) judges every watched
 * version instead: an alarm is never dropped in silence.
 */
export async function respondToAlarm(notice: AlarmNotice, deps: GuardDeps): Promise<AlarmResponse> {
  if (notice.state !== 'ALARM') return { result: 'ignored', why: `state is ${notice.state}` };
  const model = notice.dimensions.Model;
  if (model === undefined || !isValidModelName(model)) {
    const why = `the alarm ${notice.alarmName} names no model (dimensions ${JSON.stringify(notice.dimensions)})`;
    return {
      result: 'reevaluated',
      why,
      review: await reviewWatched(deps, { actor: 'guard', candidates: true }),
    };
  }
  const now = (deps.clock ?? (() => new Date()))();
  const aliases = (await deps.registry.getAliases(model))?.aliases;
  const version = versionInAlarm(aliases, model, notice.dimensions);
  if (typeof version === 'string') return { result: 'ignored', why: version };
  const baseline = baselineFor(aliases, version, now, deps.settings.watchWindowMs);
  if (baseline === undefined) {
    return {
      result: 'ignored',
      why: `${model} v${version} is neither the candidate nor production within its watch window`,
    };
  }
  const health = await judgeVersion(deps, model, version, baseline, now);
  if (health.state !== 'ALARM') return { result: 'unconfirmed', model, version, health };
  const rule = ruleOf(deps, notice.alarmName);
  const outcome = await rollbackOnReport(deps, health, now, {
    ...(rule === undefined ? {} : { name: notice.alarmName }),
  });
  if (outcome === undefined) return { result: 'unconfirmed', model, version, health };
  return { result: 'handled', outcome };
}

export interface ScheduleResult {
  promotions: PromoteDueOutcome[];
  /** versions in ALARM rolled back by this run, whatever their alarms did */
  rollbacks: RollbackOutcome[];
  /** every version this run judged */
  judged: HealthReport[];
}

/**
 * The promote schedule: every production version within its watch window and every candidate is
 * judged on the exact figures; one in ALARM is rolled back (even when its alarm's one invocation
 * found it unconfirmed earlier); a baked candidate is promoted when its rules are OK on enough
 * routed requests, else it stays candidate and says why.
 */
export async function runPromoteSchedule(deps: GuardDeps): Promise<ScheduleResult> {
  const clock = deps.clock ?? (() => new Date());
  const watch = await reviewWatched(deps, { actor: 'promote', candidates: true });
  const promotions = await promoteDue(
    deps.registry,
    async (model, version) => {
      const aliases = (await deps.registry.getAliases(model))?.aliases;
      const baseline = baselineFor(aliases, version, clock(), deps.settings.watchWindowMs) ?? {
        kind: 'none',
      };
      return judgeVersion(deps, model, version, baseline, clock());
    },
    { clock, minEvidence: deps.settings.minEvidence },
  );
  const rollbacks = [...watch.rollbacks];
  for (const outcome of promotions) {
    if (outcome.result === 'held') {
      const done = await rollbackOnReport(deps, outcome.health, clock(), { actor: 'promote' });
      if (done !== undefined) rollbacks.push(done);
    } else if (outcome.result === 'waiting') {
      await recordWaiting(deps, outcome, clock());
    }
  }
  return {
    promotions,
    rollbacks,
    judged: [...watch.judged, ...promotions.flatMap((p) => ('health' in p ? [p.health] : []))],
  };
}

/** Says once, in the aliases and the history, why a baked candidate is not promoted. */
async function recordWaiting(
  deps: GuardDeps,
  outcome: Extract<PromoteDueOutcome, { result: 'waiting' }>,
  now: Date,
): Promise<void> {
  const update = await deps.registry.updateAliases(outcome.model, (stored) =>
    stored === undefined
      ? undefined
      : heldCandidate(
          normalizeAliases(stored),
          outcome.version,
          { code: outcome.code, reason: outcome.reason },
          now,
        ),
  );
  if (!update.changed) return;
  await deps.registry.appendHistory({
    model: outcome.model,
    event: 'candidate',
    version: outcome.version,
    at: now.toISOString(),
    actor: 'promote',
    reason: outcome.reason,
    details: { held: outcome.code, started: outcome.health.started },
  });
}
