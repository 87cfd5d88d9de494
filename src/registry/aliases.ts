import type { Aliases, PromotePolicy } from './types.ts';

/**
 * Every transition of `aliases.json` as a pure function of the stored aliases: ingest places new
 * versions, the guard promotes and rolls back, the CLI and the console do both by hand. Pure, so
 * the registry's If-Match retry loop can re-run a transition on whatever a concurrent writer left
 * (docs/design.md, "Aliases").
 */

/** Aliases with the version lists always present (older records may lack them). */
export const normalizeAliases = (aliases: Aliases): Aliases => ({
  ...aliases,
  knownGood: Array.isArray(aliases.knownGood) ? [...aliases.knownGood] : [],
  rolledBack: Array.isArray(aliases.rolledBack) ? [...aliases.rolledBack] : [],
});

export const addVersion = (list: readonly number[], version: number): number[] => [
  ...list.filter((v) => v !== version),
  version,
];

export const removeVersion = (list: readonly number[], version: number): number[] =>
  list.filter((v) => v !== version);

/**
 * Production set back to a version that served before is not "newly promoted": without
 * `promotedAt` no watch window applies, so one alarm cannot walk production back version by
 * version.
 */
export const withoutPromotedAt = (aliases: Aliases): Aliases => {
  const { promotedAt: _cleared, ...rest } = aliases;
  return rest;
};

export const emptyAliases = (model: string, now: Date): Aliases => ({
  model,
  knownGood: [],
  rolledBack: [],
  updatedAt: now.toISOString(),
});

export interface AliasPolicy {
  promote: PromotePolicy;
  /** candidate traffic share, 0–1 */
  canaryWeight: number;
  bakeMs: number;
}

/** Where the new version ended up in `aliases.json`. */
export type AliasOutcome = 'production' | 'candidate' | 'none';

export const aliasOutcome = (aliases: Aliases | undefined, version: number): AliasOutcome =>
  aliases?.production === version
    ? 'production'
    : aliases?.candidate?.version === version
      ? 'candidate'
      : 'none';

/**
 * The aliases after registering `version`, or `undefined` for no change. A pure function of the
 * current aliases (the registry's If-Match loop may call it again) and idempotent (a resumed
 * ingest calls it for a version it already placed): the first version of a model always becomes
 * production; later ones follow the upload's policy. A version placed once is never placed again,
 * so a rollback that happened in between is not undone.
 */
export const placeVersion = (
  current: Aliases | undefined,
  version: number,
  policy: AliasPolicy,
  now: Date,
): Aliases | undefined => {
  const base: Aliases = current ?? {
    model: '',
    knownGood: [],
    rolledBack: [],
    updatedAt: now.toISOString(),
  };
  const placed =
    base.production === version ||
    base.candidate?.version === version ||
    base.knownGood.includes(version) ||
    base.rolledBack.includes(version);
  if (placed) return undefined;
  if (base.production === undefined || policy.promote === 'now') {
    const next: Aliases = {
      ...base,
      production: version,
      promotedAt: now.toISOString(),
      knownGood:
        base.production === undefined ? base.knownGood : [...base.knownGood, base.production],
    };
    // A candidate older than the version promoted over it has nothing left to prove.
    if (next.candidate !== undefined && next.candidate.version < version) delete next.candidate;
    return next;
  }
  if (policy.promote === 'manual') return undefined;
  return {
    ...base,
    candidate: {
      version,
      weight: policy.canaryWeight,
      bakeUntil: new Date(now.getTime() + policy.bakeMs).toISOString(),
    },
  };
};

/**
 * The candidate promotion as a pure function of the stored aliases: production becomes the
 * version, the old production joins `knownGood`, `promotedAt` starts the version's watch window.
 */
export const promoted = (current: Aliases, version: number, now: Date): Aliases => {
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

/** The candidate has baked its time and was never rolled back. */
export const isDue = (aliases: Aliases, now: Date): boolean => {
  const candidate = aliases.candidate;
  if (candidate === undefined || aliases.rolledBack.includes(candidate.version)) return false;
  const bakeUntil = Date.parse(candidate.bakeUntil);
  return !Number.isNaN(bakeUntil) && bakeUntil <= now.getTime();
};

/**
 * The version production would go back to: the newest known-good one never rolled back. The
 * rollback plan restores it; the guard's shadow re-runs production's failures on it.
 */
export const previousKnownGood = (aliases: Aliases): number | undefined => {
  const current = normalizeAliases(aliases);
  return current.knownGood.findLast(
    (v) => v !== current.production && !current.rolledBack.includes(v),
  );
};

/**
 * Production promoted less than `watchWindowMs` ago, with the version it would go back to: what
 * the guard still watches (and may roll back) after a promotion.
 */
export const watchedProduction = (
  aliases: Aliases,
  now: Date,
  watchWindowMs: number,
): { version: number; previous?: number } | undefined => {
  if (aliases.production === undefined || aliases.promotedAt === undefined) return undefined;
  const age = now.getTime() - Date.parse(aliases.promotedAt);
  if (!(age >= 0 && age <= watchWindowMs)) return undefined;
  const previous = previousKnownGood(aliases);
  return { version: aliases.production, ...(previous === undefined ? {} : { previous }) };
};

/**
 * The candidate, baked but not promoted for want of evidence, says why: `undefined` (no write)
 * when it already says so, or when `version` is no longer the candidate.
 */
export const heldCandidate = (
  current: Aliases,
  version: number,
  held: { code: 'no-traffic' | 'too-little-traffic' | 'breaching'; reason: string },
  now: Date,
): Aliases | undefined => {
  const candidate = current.candidate;
  if (candidate?.version !== version || candidate.held?.code === held.code) return undefined;
  return { ...current, candidate: { ...candidate, held: { ...held, since: now.toISOString() } } };
};

/**
 * Production set back by hand to a committed version: the version it replaces joins `rolledBack`,
 * and the restored one is not watched as a new promotion.
 */
export const restored = (current: Aliases, version: number): Aliases => {
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
};

/** The candidate's share of routed traffic changes; its bake time does not. */
export const reweighted = (current: Aliases, weight: number): Aliases =>
  current.candidate === undefined
    ? current
    : { ...current, candidate: { ...current.candidate, weight } };

export type RollbackAction = 'dropped-candidate' | 'reverted-production';

export type NoRollbackReason =
  /** the model has no aliases: nothing is served */
  | 'no-aliases'
  /** the version was rolled back already (a duplicate delivery) */
  | 'already-rolled-back'
  /** the version is neither candidate nor production (superseded, or only pinned traffic) */
  | 'not-serving'
  /** production, but promoted longer ago than the watch window: a human decides */
  | 'outside-watch-window'
  /** production in its watch window, but no healthy earlier version to return to */
  | 'no-known-good';

export type RollbackPlan =
  | { next: Aliases; version: number; action: RollbackAction; restored?: number }
  | { next: undefined; version?: number; why: NoRollbackReason; detail: string };

const none = (why: NoRollbackReason, detail: string, version?: number): RollbackPlan =>
  version === undefined
    ? { next: undefined, why, detail }
    : { next: undefined, why, detail, version };

/**
 * The rollback decision as a pure function of the stored aliases, so the If-Match retry loop can
 * re-run it on whatever a concurrent writer left: the candidate in alarm is dropped; production
 * in alarm within its watch window goes back to the newest known-good version; the bad version
 * joins `rolledBack`. Anything else changes nothing, which makes duplicate deliveries no-ops.
 */
export function planRollback(
  stored: Aliases | undefined,
  version: number | undefined,
  options: { now: Date; watchWindowMs?: number | undefined },
): RollbackPlan {
  if (stored === undefined) return none('no-aliases', 'the model has no aliases yet', version);
  const current = normalizeAliases(stored);
  const target = version ?? current.candidate?.version ?? current.production;
  if (target === undefined) return none('not-serving', 'the model serves no version');
  if (current.candidate?.version === target) {
    const { candidate: _dropped, ...rest } = current;
    return {
      next: { ...rest, rolledBack: addVersion(current.rolledBack, target) },
      version: target,
      action: 'dropped-candidate',
    };
  }
  if (current.production === target) {
    if (options.watchWindowMs !== undefined) {
      const promotedAt =
        current.promotedAt === undefined ? Number.NaN : Date.parse(current.promotedAt);
      const age = options.now.getTime() - promotedAt;
      if (!(age <= options.watchWindowMs)) {
        return none(
          'outside-watch-window',
          `production version ${target} was promoted ${current.promotedAt ?? 'at an unknown time'}, outside the ${Math.round(options.watchWindowMs / 60_000)}-minute watch window; roll it back by hand if it must go`,
          target,
        );
      }
    }
    const restored = current.knownGood.findLast(
      (v) => v !== target && !current.rolledBack.includes(v),
    );
    if (restored === undefined) {
      return none(
        'no-known-good',
        `production version ${target} has no earlier known-good version to go back to`,
        target,
      );
    }
    const rolledBack = addVersion(current.rolledBack, target);
    return {
      next: withoutPromotedAt({
        ...current,
        production: restored,
        knownGood: current.knownGood.filter((v) => v !== restored && !rolledBack.includes(v)),
        rolledBack,
      }),
      version: target,
      action: 'reverted-production',
      restored,
    };
  }
  if (current.rolledBack.includes(target)) {
    return none('already-rolled-back', `version ${target} was rolled back already`, target);
  }
  return none('not-serving', `version ${target} is neither the candidate nor production`, target);
}
