import { errorMessage } from '../errors/index.ts';
import {
  type Aliases,
  emptyAliases,
  type HistoryRecord,
  isDue,
  ModelNotFoundError,
  normalizeAliases,
  promoted,
  type Registry,
  restored,
  validateModelName,
} from '../registry/index.ts';
import { NothingToRollBackError } from './errors.ts';
import type { HealthReport } from './health.ts';
import { type RollbackOutcome, rollback } from './rollback.ts';

/** Answers whether a version's alarms are OK right now. */
export type HealthCheck = (model: string, version: number) => Promise<HealthReport>;

export type PromoteDueOutcome =
  | { model: string; version: number; result: 'promoted'; previous?: number }
  /** its rules are in ALARM: it stays candidate (rollback is the alarm's business) */
  | { model: string; version: number; result: 'held'; health: HealthReport }
  /** a concurrent writer changed the candidate between the check and the write */
  | { model: string; version: number; result: 'superseded' }
  /** baked with its rules OK, but on too few routed requests to tell: it stays candidate */
  | {
      model: string;
      version: number;
      result: 'waiting';
      code: 'no-traffic' | 'too-little-traffic' | 'breaching';
      reason: string;
      health: HealthReport;
    }
  /** its records could not be read (a corrupt aliases.json, storage down): the others go on */
  | { model: string; version?: undefined; result: 'failed'; reason: string };

export interface PromoteOptions {
  clock?: () => Date;
  /** @default 'promote' for the schedule, 'cli' for manual operations */
  actor?: string;
  /** models checked at once. @default 4 */
  concurrency?: number;
  /** routed requests a candidate must have started in the rules' window. @default 0 */
  minEvidence?: number;
}

/**
 * The scheduled promotion: each candidate whose bake time has passed and whose rules are OK
 * becomes production. A version in `rolledBack` is never promoted here. The write re-checks the
 * candidate under If-Match, so a rollback that lands first wins and nothing is promoted.
 */
export async function promoteDue(
  registry: Registry,
  health: HealthCheck,
  options: PromoteOptions = {},
): Promise<PromoteDueOutcome[]> {
  const now = (options.clock ?? (() => new Date()))();
  const models = await registry.listModels();
  const outcomes: PromoteDueOutcome[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < models.length; i = next++) {
      const model = models[i] as string;
      // one model's bad record or failed read must not stop the schedule for every other model
      const outcome = await promoteModelIfDue(registry, model, health, now, options).catch(
        (err: unknown): PromoteDueOutcome => ({
          model,
          result: 'failed',
          reason: errorMessage(err),
        }),
      );
      if (outcome !== undefined) outcomes.push(outcome);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  return outcomes.sort((a, b) => a.model.localeCompare(b.model));
}

async function promoteModelIfDue(
  registry: Registry,
  model: string,
  health: HealthCheck,
  now: Date,
  options: PromoteOptions,
): Promise<PromoteDueOutcome | undefined> {
  const snapshot = await registry.getAliases(model);
  if (snapshot === undefined) return undefined;
  const seen = normalizeAliases(snapshot.aliases);
  const version = seen.candidate?.version;
  if (version === undefined || !isDue(seen, now)) return undefined;
  const report = await health(model, version);
  if (report.state === 'ALARM') return { model, version, result: 'held', health: report };
  const breaching = report.evaluations.filter((e) => e.breaching > 0);
  if (breaching.length > 0) {
    // below ALARM, yet not healthy: promotion waits for a window without a breaching period
    const reason =
      `baked until ${seen.candidate?.bakeUntil}, but ${breaching.map((e) => `${e.rule} breached in ${e.breaching} of its last periods`).join(', ')}; ` +
      'it is promoted only after a window without a breaching period';
    return { model, version, result: 'waiting', code: 'breaching', reason, health: report };
  }
  const needed = options.minEvidence ?? 0;
  if (report.started < needed) {
    const code = report.started === 0 ? 'no-traffic' : 'too-little-traffic';
    const reason =
      `baked until ${seen.candidate?.bakeUntil}, but served ${report.started} routed requests in the rules' window ` +
      `where ${needed} are needed to judge it; it stays candidate (send it traffic, or \`maas promote ${model} ${version}\`)`;
    return { model, version, result: 'waiting', code, reason, health: report };
  }
  const decided: { previous?: number } = {};
  const update = await registry.updateAliases(model, (stored) => {
    if (stored === undefined) return undefined;
    const current = normalizeAliases(stored);
    if (current.candidate?.version !== version || !isDue(current, now)) return undefined;
    decided.previous = current.production;
    return promoted(current, version, now);
  });
  if (!update.changed) return { model, version, result: 'superseded' };
  await registry.appendHistory({
    model,
    event: 'promoted',
    version,
    at: now.toISOString(),
    actor: options.actor ?? 'promote',
    reason: `baked until ${seen.candidate?.bakeUntil}; its rules OK over ${report.started} routed requests`,
    details: {
      ...(decided.previous === undefined ? {} : { previous: decided.previous }),
      baseline: report.baseline,
      started: report.started,
      health: report.evaluations.map((e) => ({
        rule: e.rule,
        state: e.state,
        breaching: e.breaching,
      })),
    },
  });
  return {
    model,
    version,
    result: 'promoted',
    ...(decided.previous === undefined ? {} : { previous: decided.previous }),
  };
}

export interface ManualOutcome {
  model: string;
  version: number;
  changed: boolean;
  /** production before the change */
  previous?: number;
  aliases?: Aliases;
}

/**
 * A change made by hand to one committed version: `transition` decides the new aliases (the
 * production before it is passed on), `record` the history entry written when something changed.
 */
async function manualChange(
  registry: Registry,
  model: string,
  version: number,
  options: PromoteOptions,
  transition: (current: Aliases, now: Date) => Aliases,
  record: (
    previous: number | undefined,
    current: Aliases,
  ) => Pick<HistoryRecord, 'event' | 'reason' | 'details'> & { version?: number },
): Promise<ManualOutcome> {
  validateModelName(model);
  await registry.getManifest(model, version);
  const now = (options.clock ?? (() => new Date()))();
  const decided: { previous?: number; before?: Aliases } = {};
  const update = await registry.updateAliases(model, (stored) => {
    const current = normalizeAliases(stored ?? emptyAliases(model, now));
    if (current.production === version) return undefined;
    decided.previous = current.production;
    decided.before = current;
    return transition(current, now);
  });
  if (update.changed && decided.before !== undefined) {
    await registry.appendHistory({
      model,
      at: now.toISOString(),
      actor: options.actor ?? 'cli',
      ...record(decided.previous, decided.before),
    });
  }
  return {
    model,
    version,
    changed: update.changed,
    ...(decided.previous === undefined ? {} : { previous: decided.previous }),
    ...(update.aliases === undefined ? {} : { aliases: update.aliases }),
  };
}

/**
 * `maas promote NAME VERSION`: makes a committed version production at once, even one the guard
 * rolled back (it leaves `rolledBack`: a person decided). The version's watch window starts now.
 */
export const promoteVersion = (
  registry: Registry,
  model: string,
  version: number,
  options: PromoteOptions = {},
): Promise<ManualOutcome> =>
  manualChange(
    registry,
    model,
    version,
    options,
    (current, now) => promoted(current, version, now),
    (previous, current) => ({
      event: 'promoted',
      version,
      reason: current.rolledBack.includes(version)
        ? 'manual promote, overriding an earlier rollback'
        : 'manual promote',
      details: { manual: true, ...(previous === undefined ? {} : { previous }) },
    }),
  );

/**
 * `maas rollback NAME --to VERSION`: production becomes the named committed version; the version
 * it replaces is marked rolled back. A version restored by hand is not watched as a new promotion.
 */
export const rollbackTo = (
  registry: Registry,
  model: string,
  version: number,
  options: PromoteOptions = {},
): Promise<ManualOutcome> =>
  manualChange(
    registry,
    model,
    version,
    options,
    (current) => restored(current, version),
    (previous) => ({
      event: 'rolled-back',
      ...(previous === undefined ? {} : { version: previous }),
      reason: `manual rollback to version ${version}`,
      details: { manual: true, action: 'rolled-back-to', restored: version },
    }),
  );

/**
 * `maas rollback NAME`: undoes the latest change the way the guard would, without its watch
 * window: drops the candidate if there is one, else reverts production to the newest known-good
 * version. NothingToRollBackError when neither is possible.
 */
export async function rollbackLatest(
  registry: Registry,
  model: string,
  options: PromoteOptions = {},
): Promise<RollbackOutcome & { changed: true }> {
  const outcome = await rollback(
    { model, alarm: { name: 'maas rollback', reason: 'rolled back by hand' } },
    registry,
    {
      watchWindowMs: undefined,
      actor: options.actor ?? 'cli',
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    },
  );
  if (!outcome.changed) {
    // a typo in the name is not "nothing to roll back": say the model is not there
    if (outcome.why === 'no-aliases' && !(await registry.hasModel(model))) {
      throw new ModelNotFoundError(model);
    }
    throw new NothingToRollBackError(model, outcome.detail);
  }
  return outcome;
}
