import type { Aliases } from '../registry/index.ts';

/** Aliases as the guard reasons about them: the version lists always present. */
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
