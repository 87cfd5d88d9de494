/**
 * The guard's public face: rules, evaluation, promotion and rollback over interfaces. It loads no
 * AWS client, so the CDK app and the local stack import the rules from here; the CloudWatch and
 * SNS adapters are in `./aws.ts`.
 */
export {
  type AlarmDefinition,
  type AlarmOptions,
  type AlarmOverride,
  alarmDefinitions,
  type Datapoint,
  DEFAULT_ALARM_DEFINITIONS,
  type Evaluation,
  evaluate,
  GUARD_DIMENSIONS,
  type GuardStatistic,
  type InsightsFunction,
  insightsQuery,
  isBreaching,
  periodMs,
  statisticOf,
} from './alarms.ts';
export type { GuardDeps } from './deps.ts';
export { InvalidAlarmOptionsError, NothingToRollBackError } from './errors.ts';
export {
  checkHealth,
  evaluationMetrics,
  evaluationWindow,
  type HealthReport,
  type MetricsReader,
} from './health.ts';
export {
  type HealthCheck,
  type ManualOutcome,
  type PromoteDueOutcome,
  type PromoteOptions,
  promoteDue,
  promoteVersion,
  rollbackLatest,
  rollbackTo,
} from './promote.ts';
export {
  type AlarmNotice,
  type AlarmResponse,
  respondToAlarm,
  runPromoteSchedule,
  type ScheduleResult,
} from './respond.ts';
export {
  type AlarmFacts,
  DEFAULT_WATCH_WINDOW_MS,
  type GuardNotification,
  type Notifier,
  type RollbackOptions,
  type RollbackOutcome,
  type RollbackRequest,
  rollback,
} from './rollback.ts';
export { DEFAULT_ALARM_PREFIX, type GuardSettings, guardSettings } from './settings.ts';
