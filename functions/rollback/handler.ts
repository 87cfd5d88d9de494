import { Logger } from '@aws-lambda-powertools/logger';
import { guardDepsFromEnv } from '../../src/guard/aws.ts';
import { type AlarmResponse, type GuardDeps, respondToAlarm } from '../../src/guard/index.ts';
import { parseAlarmEvent } from './event.ts';

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
 * local stack's evaluator with the same event shape. Duplicate deliveries change nothing.
 */
export const createRollbackHandler = (options: RollbackHandlerOptions = {}) => {
  const logger = options.logger ?? new Logger({ serviceName: 'maas-rollback' });
  let deps: GuardDeps | undefined;
  return async (event: unknown): Promise<AlarmResponse> => {
    const signal = parseAlarmEvent(event);
    deps ??= (options.deps ?? guardDepsFromEnv)();
    const response = await respondToAlarm(signal, deps);
    const context = { alarm: signal.alarmName, dimensions: signal.dimensions };
    if (response.result === 'handled' && response.outcome.changed) {
      logger.warn('rolled back', { ...context, ...response.outcome });
    } else {
      logger.info('no rollback', { ...context, response });
    }
    return response;
  };
};

export const handler = createRollbackHandler();
