import { Logger } from '@aws-lambda-powertools/logger';
import { guardDepsFromEnv } from '../../src/guard/aws.ts';
import { type GuardDeps, runPromoteSchedule, type ScheduleResult } from '../../src/guard/index.ts';

export interface PromoteHandlerOptions {
  /** default: the model bucket, CloudWatch and SNS configured from the environment (at first use) */
  deps?: () => GuardDeps;
  logger?: Logger;
}

/**
 * The scheduled promotion (EventBridge rate rule; a timer locally). The event carries nothing the
 * function needs: every model's candidate is checked against the exact figures of the guard's
 * rules read from CloudWatch (GetMetricData), the same figures rollback confirms alarms with.
 */
export const createPromoteHandler = (options: PromoteHandlerOptions = {}) => {
  const logger = options.logger ?? new Logger({ serviceName: 'maas-promote' });
  let deps: GuardDeps | undefined;
  return async (_event?: unknown): Promise<ScheduleResult> => {
    deps ??= (options.deps ?? guardDepsFromEnv)();
    const result = await runPromoteSchedule(deps);
    for (const outcome of result.promotions) {
      if (outcome.result === 'held') {
        logger.warn('candidate held', {
          model: outcome.model,
          version: outcome.version,
          health: outcome.health,
        });
      } else logger.info(`candidate ${outcome.result}`, { ...outcome });
    }
    for (const outcome of result.rollbacks)
      logger.warn('rolled back by the schedule', { ...outcome });
    return result;
  };
};

export const handler = createPromoteHandler();
