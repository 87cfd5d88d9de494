import type { Aliases, Registry } from '../registry/index.ts';
import { validateModelName } from '../registry/index.ts';
import { addVersion, normalizeAliases, removeVersion, withoutPromotedAt } from './aliases.ts';
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
  | { model: string; version: number; result: 'superseded' };

export interface PromoteOptions {
  clock?: () => Date;
  /** @default 'promote' for the schedule, 'cli' for manual operations */
  actor?: string;
  /** models checked at once. @default 4 */
  concurrency?: number;
}

/**
 * The candidate promotion as a pure function of the stored aliases: production becomes the
 * version, the old production joins `knownGood`, `promotedAt` starts the version's watch window.
 */
const promoted = (current: Aliases, version: number, now: Date): Aliases => {
  const { candidate, ...rest } = current;
  const previous = current.production;
  return {
    ...rest,
    ...(candidate !== undefined && candidate.version !== version ? { candidate } : {}),
    production: version,
    knownGood:
      previous === undefined || previous === version || current.rolledBack.includes(previous)
        ? removeVersion(current.knownGood, version)
        : addVersion(removeVersion(current.knownGood, version), previous),
    rolledBack: removeVersion(current.rolledBack, version),
    promotedAt: now.toISOString(),
  };
};

const isDue = (aliases: Aliases, now: Date): boolean => {
  const candidate = aliases.candidate;
  if (candidate === undefined || aliases.rolledBack.includes(candidate.version)) return false;
  const bakeUntil = Date.parse(candidate.bakeUntil);
  return !Number.isNaN(bakeUntil) && bakeUntil <= now.getTime();
};

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
      const outcome = await promoteModelIfDue(registry, models[i] as string, health, now, options);
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
    reason: `baked until ${seen.candidate?.bakeUntil} with its alarms OK`,
    details: {
      ...(decided.previous === undefined ? {} : { previous: decided.previous }),
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
 * `maas promote NAME VERSION`: makes a committed version production at once, even one the guard
 * rolled back (it leaves `rolledBack`: a person decided). The version's watch window starts now.
 */
export async function promoteVersion(
  registry: Registry,
  model: string,
  version: number,
  options: PromoteOptions = {},
): Promise<ManualOutcome> {
  validateModelName(model);
  await registry.getManifest(model, version);
  const now = (options.clock ?? (() => new Date()))();
  const decided: { previous?: number; overrode?: boolean } = {};
  const update = await registry.updateAliases(model, (stored) => {
    const current = normalizeAliases(stored ?? emptyAliases(model, now));
    if (current.production === version) return undefined;
    decided.previous = current.production;
    decided.overrode = current.rolledBack.includes(version);
    return promoted(current, version, now);
  });
  if (update.changed) {
    await registry.appendHistory({
      model,
      event: 'promoted',
      version,
      at: now.toISOString(),
      actor: options.actor ?? 'cli',
      reason: decided.overrode
        ? 'manual promote, overriding an earlier rollback'
        : 'manual promote',
      details: {
        manual: true,
        ...(decided.previous === undefined ? {} : { previous: decided.previous }),
      },
    });
  }
  return outcomeOf(model, version, update.changed, decided.previous, update.aliases);
}

/**
 * `maas rollback NAME --to VERSION`: production becomes the named committed version; the version
 * it replaces is marked rolled back. A version restored by hand is not watched as a new promotion.
 */
export async function rollbackTo(
  registry: Registry,
  model: string,
  version: number,
  options: PromoteOptions = {},
): Promise<ManualOutcome> {
  validateModelName(model);
  await registry.getManifest(model, version);
  const now = (options.clock ?? (() => new Date()))();
  const decided: { previous?: number } = {};
  const update = await registry.updateAliases(model, (stored) => {
    const current = normalizeAliases(stored ?? emptyAliases(model, now));
    if (current.production === version) return undefined;
    decided.previous = current.production;
    const { candidate, ...rest } = current;
    const previous = current.production;
    let rolledBack = removeVersion(current.rolledBack, version);
    if (previous !== undefined) rolledBack = addVersion(rolledBack, previous);
    return withoutPromotedAt({
      ...rest,
      ...(candidate !== undefined && candidate.version !== version ? { candidate } : {}),
      production: version,
      knownGood: current.knownGood.filter((v) => v !== version && v !== previous),
      rolledBack,
    });
  });
  if (update.changed) {
    await registry.appendHistory({
      model,
      event: 'rolled-back',
      ...(decided.previous === undefined ? {} : { version: decided.previous }),
      at: now.toISOString(),
      actor: options.actor ?? 'cli',
      reason: `manual rollback to version ${version}`,
      details: {
        manual: true,
        action: 'rolled-back-to',
        restored: version,
      },
    });
  }
  return outcomeOf(model, version, update.changed, decided.previous, update.aliases);
}

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
  if (!outcome.changed) throw new NothingToRollBackError(model, outcome.detail);
  return outcome;
}

const emptyAliases = (model: string, now: Date): Aliases => ({
  model,
  knownGood: [],
  rolledBack: [],
  updatedAt: now.toISOString(),
});

const outcomeOf = (
  model: string,
  version: number,
  changed: boolean,
  previous: number | undefined,
  aliases: Aliases | undefined,
): ManualOutcome => ({
  model,
  version,
  changed,
  ...(previous === undefined ? {} : { previous }),
  ...(aliases === undefined ? {} : { aliases }),
});
