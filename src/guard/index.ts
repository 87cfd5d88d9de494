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
  type Baseline,
  type Datapoint,
  DEFAULT_ALARM_DEFINITIONS,
  type Evaluation,
  evaluateTrigger,
  GUARD_DIMENSIONS,
  type GuardStatistic,
  type InsightsFunction,
  insightsQuery,
  isTriggering,
  type JudgedPeriod,
  judge,
  type PeriodFigures,
  periodMs,
  type RuleKind,
  statisticOf,
  type TriggerEvaluation,
  zScore,
} from './alarms.ts';
export {
  CanaryWeightError,
  type CanaryWeightOutcome,
  checkCanaryWeight,
  setCanaryWeight,
} from './canary.ts';
export type { GuardDeps } from './deps.ts';
export { InvalidAlarmOptionsError, NothingToRollBackError } from './errors.ts';
export {
  type BaselineRef,
  checkHealth,
  evaluationMetrics,
  evaluationWindow,
  type HealthReport,
  type JudgeSettings,
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
  baselineFor,
  type Review,
  respondToAlarm,
  reviewWatched,
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
export {
  DEFAULT_ALARM_PREFIX,
  DEFAULT_MIN_EVIDENCE,
  DEFAULT_SETTLE_SECONDS,
  type GuardSettings,
  guardSettings,
} from './settings.ts';
