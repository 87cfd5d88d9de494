import { Logger } from '@aws-lambda-powertools/logger';
import { errorMessage } from '../../src/errors/index.ts';
import { guardDepsFromEnv } from '../../src/guard/aws.ts';
import {
  type AlarmResponse,
  type GuardDeps,
  respondToAlarm,
  reviewWatched,
} from '../../src/guard/index.ts';
import { type AlarmSignal, InvalidAlarmEventError, parseAlarmEvent } from './event.ts';

export {
  type AlarmActionEvent,
  type AlarmEvent,
  type AlarmSignal,
  type AlarmStateChangeEvent,
  InvalidAlarmEventError,
  parseAlarmEvent,
} from './event.ts';

export interface RollbackHandlerOptions {
  /** default: the model bucket, CloudWatch and SNS configured from the environment (at first use) */
  deps?: () => GuardDeps;
  logger?: Logger;
}

/**
 * Alarm event in → rollback of the model version in alarm out. Invoked by each contributor of the
 * guard's Metrics Insights alarms (alarm action), by an EventBridge alarm-state rule, or by the
 * local stack's evaluator with the same event shape. Duplicate deliveries change nothing. An
 * event the function cannot read, or one that names no model version (a composite alarm), makes
 * it judge every watched version, with a WARN: an alarm is never dropped in silence.
 */
export const createRollbackHandler = (options: RollbackHandlerOptions = {}) => {
  const logger = options.logger ?? new Logger({ serviceName: 'maas-rollback' });
  let deps: GuardDeps | undefined;
  return async (event: unknown): Promise<AlarmResponse> => {
    deps ??= (options.deps ?? guardDepsFromEnv)();
    let signal: AlarmSignal;
    try {
      signal = parseAlarmEvent(event);
    } catch (err) {
      if (!(err instanceof InvalidAlarmEventError)) throw err;
      const why = errorMessage(err);
      const review = await reviewWatched(deps, { actor: 'guard', candidates: true });
      logger.warn('unreadable alarm event: judged every watched version', {
        why,
        event: JSON.stringify(event)?.slice(0, 2000),
        judged: review.judged.map((r) => `${r.model}@${r.version} ${r.state}`),
        rollbacks: review.rollbacks,
      });
      return { result: 'reevaluated', why, review };
    }
    const response = await respondToAlarm(signal, deps);
    const context = { alarm: signal.alarmName, dimensions: signal.dimensions };
    if (response.result === 'reevaluated') {
      logger.warn('alarm names no model version: judged every watched version', {
        ...context,
        why: response.why,
        judged: response.review.judged.map((r) => `${r.model}@${r.version} ${r.state}`),
        rollbacks: response.review.rollbacks,
      });
    } else if (response.result === 'handled' && response.outcome.changed) {
      logger.warn('rolled back', { ...context, ...response.outcome });
    } else {
      logger.info('no rollback', { ...context, response });
    }
    return response;
  };
};

export const handler = createRollbackHandler();
