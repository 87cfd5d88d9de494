import { type Env, envNumber } from '../config/index.ts';
import type { LoadedModel } from '../runtime/index.ts';

/**
 * The guard's shadow: after a promotion, while the new production version is watched, a request
 * it fails is run again on the previous known-good version (answer discarded) so the guard can
 * tell "fails on the new version only" (a regression: counted) from "fails everywhere" (the
 * client's inputs: not counted). Only failures are re-run, so healthy traffic pays nothing; the
 * re-runs are bounded by a token bucket to a share of the routed production requests an instance
 * serves, so a client sending failing inputs at any rate cannot double the model's cost.
 */
export interface ShadowSettings {
  /** re-runs allowed per routed production request, 0–1 (`MAAS_SHADOW_SHARE`). @default 0.1 */
  share: number;
  /** re-runs an idle instance may make at once. @default 5 */
  burst: number;
  /** how long after a promotion the shadow runs (`MAAS_WATCH_MINUTES`, scaled like the guard's) */
  watchWindowMs: number;
}

export const DEFAULT_SHADOW_SHARE = 0.1;
export const SHADOW_BURST = 5;

/** Read once at cold start, with the guard's own watch window (minutes × time scale). */
export const shadowFromEnv = (env: Env = process.env): ShadowSettings => {
  const scale = envNumber(env, 'MAAS_GUARD_TIME_SCALE', 1, { min: 0, exclusiveMin: true });
  const minutes = envNumber(env, 'MAAS_WATCH_MINUTES', 60, { min: 0, exclusiveMin: true });
  return {
    share: envNumber(env, 'MAAS_SHADOW_SHARE', DEFAULT_SHADOW_SHARE, { min: 0, max: 1 }),
    burst: SHADOW_BURST,
    watchWindowMs: minutes * 60_000 * scale,
  };
};

/** The version a failure of `loaded` should be re-run on, when it is watched after a promotion. */
export const shadowTarget = (
  settings: ShadowSettings,
  loaded: LoadedModel,
  now: number,
): number | undefined => {
  const promotion = loaded.promotion;
  if (loaded.variant !== 'production' || promotion === undefined) return undefined;
  const age = now - Date.parse(promotion.at);
  return age >= 0 && age <= settings.watchWindowMs ? promotion.previous : undefined;
};

/** One instance's allowance of re-runs: `share` per routed request served, at most `burst`. */
export class ShadowBudget {
  private tokens: number;

  constructor(private readonly settings: ShadowSettings) {
    this.tokens = settings.burst;
  }

  /** a watched production request was served: the allowance grows */
  served(): void {
    this.tokens = Math.min(this.settings.burst, this.tokens + this.settings.share);
  }

  /** takes one re-run if the allowance has one */
  take(): boolean {
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
