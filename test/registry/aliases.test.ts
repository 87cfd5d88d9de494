import { describe, expect, it } from 'vitest';
import {
  type Aliases,
  type AliasPolicy,
  aliasOutcome,
  isDue,
  placeVersion,
  promoted,
  restored,
} from '../../src/registry/index.ts';

const now = new Date('2026-12-02T12:00:00Z');
const aliases = (over: Partial<Aliases> = {}): Aliases => ({
  model: 'm',
  knownGood: [],
  rolledBack: [],
  updatedAt: now.toISOString(),
  ...over,
});
const canary: AliasPolicy = { promote: 'canary', canaryWeight: 0.1, bakeMs: 60_000 };

describe('placeVersion', () => {
  it('makes the first version production, whatever the policy', () => {
    const next = placeVersion(undefined, 1, { ...canary, promote: 'manual' }, now);
    expect(next).toMatchObject({ production: 1, promotedAt: now.toISOString(), knownGood: [] });
    expect(aliasOutcome(next, 1)).toBe('production');
  });

  it('makes a later version a candidate at the policy’s weight, baking for bakeMs', () => {
    const next = placeVersion(aliases({ production: 1 }), 2, canary, now);
    expect(next?.candidate).toEqual({
      version: 2,
      weight: 0.1,
      bakeUntil: '2026-12-02T12:01:00.000Z',
    });
    expect(next?.production).toBe(1);
  });

  it('promotes at once with `now`, keeping the old production as known good', () => {
    const next = placeVersion(
      aliases({ production: 1, candidate: { version: 2, weight: 0.1, bakeUntil: '' } }),
      3,
      { ...canary, promote: 'now' },
      now,
    );
    expect(next).toMatchObject({ production: 3, knownGood: [1] });
    expect(next?.candidate).toBeUndefined();
  });

  it('leaves a manual version unrouted and never places a version twice', () => {
    expect(
      placeVersion(aliases({ production: 1 }), 2, { ...canary, promote: 'manual' }, now),
    ).toBeUndefined();
    expect(
      placeVersion(aliases({ production: 1, rolledBack: [2] }), 2, canary, now),
    ).toBeUndefined();
  });
});

describe('promotion and restore', () => {
  it('promotes a candidate: the old production becomes known good, the watch window starts', () => {
    const current = aliases({
      production: 1,
      candidate: { version: 2, weight: 0.1, bakeUntil: '' },
    });
    expect(promoted(current, 2, now)).toEqual(
      aliases({ production: 2, knownGood: [1], rolledBack: [], promotedAt: now.toISOString() }),
    );
  });

  it('does not vouch for a rolled-back production when promoting over it', () => {
    expect(promoted(aliases({ production: 1, rolledBack: [1] }), 2, now).knownGood).toEqual([]);
  });

  it('restores by hand: the replaced version is rolled back and no watch window applies', () => {
    const next = restored(
      aliases({ production: 3, knownGood: [1, 2], promotedAt: now.toISOString() }),
      1,
    );
    expect(next).toMatchObject({ production: 1, knownGood: [2], rolledBack: [3] });
    expect(next.promotedAt).toBeUndefined();
  });

  it('calls a candidate due once its bake time passed and never after a rollback', () => {
    const baking = aliases({
      production: 1,
      candidate: { version: 2, weight: 0.1, bakeUntil: '2026-12-02T11:59:00Z' },
    });
    expect(isDue(baking, now)).toBe(true);
    expect(isDue({ ...baking, rolledBack: [2] }, now)).toBe(false);
    expect(isDue(baking, new Date('2026-12-02T11:58:00Z'))).toBe(false);
  });
});
