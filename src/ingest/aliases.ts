import type { Aliases, PromotePolicy } from '../registry/index.ts';

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
