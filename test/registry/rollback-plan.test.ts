import { describe, expect, it } from 'vitest';
import type { Aliases } from '../../src/registry/index.ts';
import { planRollback } from '../../src/registry/index.ts';

const now = new Date('2026-06-01T12:00:00.000Z');
const minutesAgo = (minutes: number): string =>
  new Date(now.getTime() - minutes * 60_000).toISOString();
const HOUR = 60 * 60_000;

const aliases = (over: Partial<Aliases>): Aliases => ({
  model: 'm',
  knownGood: [],
  rolledBack: [],
  updatedAt: minutesAgo(1),
  ...over,
});

const candidate = (version: number) => ({ version, weight: 0.1, bakeUntil: minutesAgo(-30) });

describe('planRollback', () => {
  it('drops the candidate in alarm and marks it rolled back, leaving production alone', () => {
    const plan = planRollback(
      aliases({ production: 1, candidate: candidate(2), promotedAt: minutesAgo(600) }),
      2,
      { now, watchWindowMs: HOUR },
    );
    expect(plan).toMatchObject({ action: 'dropped-candidate', version: 2 });
    expect(plan.next).toEqual(
      aliases({ production: 1, rolledBack: [2], promotedAt: minutesAgo(600) }),
    );
  });

  it('reverts production in its watch window to the newest known-good version', () => {
    const plan = planRollback(
      aliases({ production: 4, knownGood: [1, 2, 3], rolledBack: [3], promotedAt: minutesAgo(10) }),
      4,
      { now, watchWindowMs: HOUR },
    );
    expect(plan).toMatchObject({ action: 'reverted-production', version: 4, restored: 2 });
    // the restored version is not a fresh promotion: no watch window for it
    expect(plan.next).toEqual(aliases({ production: 2, knownGood: [1], rolledBack: [3, 4] }));
  });

  it('keeps a candidate when production is the version in alarm', () => {
    const plan = planRollback(
      aliases({
        production: 2,
        candidate: candidate(3),
        knownGood: [1],
        promotedAt: minutesAgo(5),
      }),
      2,
      { now, watchWindowMs: HOUR },
    );
    expect(plan.next).toMatchObject({ production: 1, candidate: candidate(3), rolledBack: [2] });
  });

  it('leaves production promoted before the watch window to people', () => {
    const plan = planRollback(
      aliases({ production: 2, knownGood: [1], promotedAt: minutesAgo(61) }),
      2,
      { now, watchWindowMs: HOUR },
    );
    expect(plan).toMatchObject({ next: undefined, why: 'outside-watch-window', version: 2 });
  });

  it('leaves production without promotedAt (restored earlier) alone', () => {
    const plan = planRollback(aliases({ production: 2, knownGood: [1] }), 2, {
      now,
      watchWindowMs: HOUR,
    });
    expect(plan).toMatchObject({ next: undefined, why: 'outside-watch-window' });
  });

  it('does nothing to production without a known-good version to return to', () => {
    const plan = planRollback(aliases({ production: 1, promotedAt: minutesAgo(1) }), 1, {
      now,
      watchWindowMs: HOUR,
    });
    expect(plan).toMatchObject({ next: undefined, why: 'no-known-good' });
  });

  it('sees a duplicate delivery as already rolled back', () => {
    const after = planRollback(aliases({ production: 1, candidate: candidate(2) }), 2, {
      now,
      watchWindowMs: HOUR,
    }).next;
    const again = planRollback(after, 2, { now, watchWindowMs: HOUR });
    expect(again).toMatchObject({ next: undefined, why: 'already-rolled-back', version: 2 });
  });

  it('ignores a version that is neither candidate nor production', () => {
    const plan = planRollback(aliases({ production: 3, candidate: candidate(4) }), 2, {
      now,
      watchWindowMs: HOUR,
    });
    expect(plan).toMatchObject({ next: undefined, why: 'not-serving', version: 2 });
  });

  it('blames the candidate, else production, when the alarm names no version', () => {
    expect(
      planRollback(aliases({ production: 1, candidate: candidate(2) }), undefined, {
        now,
        watchWindowMs: HOUR,
      }),
    ).toMatchObject({ action: 'dropped-candidate', version: 2 });
    expect(
      planRollback(
        aliases({ production: 2, knownGood: [1], promotedAt: minutesAgo(1) }),
        undefined,
        { now, watchWindowMs: HOUR },
      ),
    ).toMatchObject({ action: 'reverted-production', version: 2, restored: 1 });
  });

  it('reverts production at any age without a watch window (a manual rollback)', () => {
    const plan = planRollback(aliases({ production: 2, knownGood: [1] }), undefined, { now });
    expect(plan).toMatchObject({ action: 'reverted-production', restored: 1 });
  });

  it('has nothing to do for a model without aliases', () => {
    expect(planRollback(undefined, 1, { now, watchWindowMs: HOUR })).toMatchObject({
      next: undefined,
      why: 'no-aliases',
    });
  });
});
