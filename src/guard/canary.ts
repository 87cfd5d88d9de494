import { MaasError } from '../errors/index.ts';
import {
  normalizeAliases,
  type Registry,
  reweighted,
  validateModelName,
} from '../registry/index.ts';
import type { PromoteOptions } from './promote.ts';

/** The weight asked for is not a share of traffic, or the model has no candidate to weigh. */
export class CanaryWeightError extends MaasError {
  constructor(model: string, message: string) {
    super('InvalidCanaryWeight', message, { details: { model } });
  }
}

export interface CanaryWeightOutcome {
  model: string;
  version: number;
  changed: boolean;
  weight: number;
  previousWeight: number;
}

/** Throws CanaryWeightError unless `weight` is a share of traffic from 0 to 1. */
export function checkCanaryWeight(model: string, weight: number): number {
  if (!Number.isFinite(weight) || weight < 0 || weight > 1) {
    throw new CanaryWeightError(
      model,
      `canary weight must be a number from 0 to 1 (0.25 sends a quarter of the traffic to the candidate), got ${weight}`,
    );
  }
  return weight;
}

/**
 * `maas canary NAME --weight W`: the candidate's share of traffic changes; its bake time does
 * not. Recorded in history as a `candidate` event with both weights.
 */
export async function setCanaryWeight(
  registry: Registry,
  model: string,
  weight: number,
  options: PromoteOptions = {},
): Promise<CanaryWeightOutcome> {
  validateModelName(model);
  checkCanaryWeight(model, weight);
  const now = (options.clock ?? (() => new Date()))();
  const decided: { version?: number; previous?: number } = {};
  const update = await registry.updateAliases(model, (stored) => {
    const current = stored === undefined ? undefined : normalizeAliases(stored);
    const candidate = current?.candidate;
    if (current === undefined || candidate === undefined) return undefined;
    decided.version = candidate.version;
    decided.previous = candidate.weight;
    if (candidate.weight === weight) return undefined;
    return reweighted(current, weight);
  });
  if (decided.version === undefined || decided.previous === undefined) {
    throw new CanaryWeightError(
      model,
      `model "${model}" has no candidate version to weigh: upload one with --promote canary first`,
    );
  }
  if (update.changed) {
    await registry.appendHistory({
      model,
      event: 'candidate',
      version: decided.version,
      at: now.toISOString(),
      actor: options.actor ?? 'cli',
      reason: `canary weight changed from ${decided.previous} to ${weight}`,
      details: { manual: true, weight, previousWeight: decided.previous },
    });
  }
  return {
    model,
    version: decided.version,
    changed: update.changed,
    weight,
    previousWeight: decided.previous,
  };
}
