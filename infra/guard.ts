import { Duration, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { LambdaAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { Construct } from 'constructs';
import { MaasError } from '../src/errors/index.ts';
import { FailureQueue } from './failure-queue.ts';
import { MaasFunction } from './maas-function.ts';
import { METRIC_DIMENSIONS, METRIC_NAMESPACE } from './metrics.ts';
import type { ModelBucket } from './model-bucket.ts';
import type { MaasSettings } from './settings.ts';

/**
 * The aggregate functions of CloudWatch Metrics Insights: the only statistics an alarm with
 * `GROUP BY` can evaluate. Percentiles (p99) are not among them; a latency guard uses `AVG` or
 * `MAX`, or a metric the handler emits as 0/1 per request ("slower than the SLO") with `AVG`,
 * which is the share of slow requests (`AVG > 0.01` ⇔ p99 above the SLO).
 */
export const GUARD_STATISTICS = ['AVG', 'SUM', 'MAX', 'MIN', 'COUNT'] as const;
export type GuardStatistic = (typeof GUARD_STATISTICS)[number];

/**
 * One health rule of the control loop. The same definitions drive the cloud alarms (here) and the
 * local stack's evaluator; `src/guard` owns the list. The alarm goes to ALARM for a contributor
 * (model + variant) when `statistic(metricName)` over `periodSeconds` is above `threshold` in
 * `datapointsToAlarm` of the last `evaluationPeriods` periods.
 */
export interface GuardAlarmDefinition {
  /** stable id (lower-case, digits, hyphens): part of the alarm name, key of `maas:alarmThresholds` */
  readonly name: string;
  /** what the alarm means, shown in the console and in notifications */
  readonly description?: string;
  /** a metric of the `Maas` namespace emitted with the `Model` and `Variant` dimensions */
  readonly metricName: string;
  readonly statistic: GuardStatistic;
  /** alarm when the statistic is greater than this */
  readonly threshold: number;
  /** seconds per datapoint: a multiple of 60 (Metrics Insights has no high-resolution data) */
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  /**
   * Fewer requests than this in the evaluation window must not roll anything back. A Metrics
   * Insights alarm is one query over one metric and cannot express it, so the rollback function
   * checks it (it is granted `cloudwatch:GetMetricData` for that when any definition sets it > 0).
   */
  readonly minRequests: number;
}

/** An alarm definition (or a threshold override of one) the guard cannot turn into an alarm. */
export class InvalidAlarmDefinitionError extends MaasError {
  constructor(problems: readonly string[]) {
    super(
      'InvalidAlarmDefinition',
      `Invalid guard alarm definitions:\n  - ${problems.join('\n  - ')}`,
      {
        details: { problems },
      },
    );
  }
}

/** Metrics Insights alarms evaluate at most the latest three hours of data. */
const MAX_WINDOW_SECONDS = 3 * 60 * 60;

const definitionProblems = (def: GuardAlarmDefinition): string[] => {
  const problems: string[] = [];
  const at = `alarm "${def.name}"`;
  if (!/^[a-z][a-z0-9-]{0,47}$/.test(def.name)) {
    problems.push(
      `${at}: name must be 1–48 lower-case letters, digits or hyphens, starting with a letter`,
    );
  }
  if (!/^[A-Za-z][A-Za-z0-9_]{0,254}$/.test(def.metricName)) {
    problems.push(
      `${at}: metricName "${def.metricName}" must be letters, digits and underscores, starting with a letter`,
    );
  }
  if (!(GUARD_STATISTICS as readonly string[]).includes(def.statistic)) {
    problems.push(
      `${at}: statistic "${def.statistic}" is not a Metrics Insights function; use one of ${GUARD_STATISTICS.join(', ')}`,
    );
  }
  if (!Number.isFinite(def.threshold)) problems.push(`${at}: threshold must be a finite number`);
  if (
    !Number.isInteger(def.periodSeconds) ||
    def.periodSeconds < 60 ||
    def.periodSeconds % 60 !== 0
  ) {
    problems.push(`${at}: periodSeconds ${def.periodSeconds} must be a multiple of 60`);
  }
  if (!Number.isInteger(def.evaluationPeriods) || def.evaluationPeriods < 1) {
    problems.push(`${at}: evaluationPeriods must be an integer ≥ 1`);
  } else if (def.evaluationPeriods * def.periodSeconds > MAX_WINDOW_SECONDS) {
    problems.push(
      `${at}: evaluationPeriods × periodSeconds = ${def.evaluationPeriods * def.periodSeconds} s exceeds the 3 hours a Metrics Insights alarm can evaluate`,
    );
  }
  if (
    !Number.isInteger(def.datapointsToAlarm) ||
    def.datapointsToAlarm < 1 ||
    def.datapointsToAlarm > def.evaluationPeriods
  ) {
    problems.push(
      `${at}: datapointsToAlarm must be an integer from 1 to evaluationPeriods (${def.evaluationPeriods})`,
    );
  }
  if (!Number.isInteger(def.minRequests) || def.minRequests < 0) {
    problems.push(`${at}: minRequests must be an integer ≥ 0`);
  }
  return problems;
};

/**
 * Validates the definitions and applies threshold overrides (by name). Throws one
 * InvalidAlarmDefinitionError listing every problem.
 */
export const resolveAlarmDefinitions = (
  definitions: readonly GuardAlarmDefinition[],
  thresholdOverrides: Readonly<Record<string, number>> = {},
): GuardAlarmDefinition[] => {
  const problems = definitions.flatMap(definitionProblems);
  const names = definitions.map((def) => def.name);
  const duplicates = names.filter((name, i) => names.indexOf(name) !== i);
  if (duplicates.length > 0)
    problems.push(`duplicate alarm names: ${[...new Set(duplicates)].join(', ')}`);
  for (const name of Object.keys(thresholdOverrides)) {
    if (!names.includes(name)) {
      problems.push(
        `maas:alarmThresholds names "${name}", which is not an alarm; known: ${names.join(', ') || '(none)'}`,
      );
    }
  }
  if (problems.length > 0) throw new InvalidAlarmDefinitionError(problems);
  return definitions.map((def) => ({
    ...def,
    threshold: thresholdOverrides[def.name] ?? def.threshold,
  }));
};

/** The Metrics Insights query of a definition: one result series per model and variant. */
export const guardQuery = (def: GuardAlarmDefinition): string =>
  `SELECT ${def.statistic}(${def.metricName}) FROM SCHEMA("${METRIC_NAMESPACE}", ${METRIC_DIMENSIONS.join(', ')}) ` +
  `GROUP BY ${METRIC_DIMENSIONS.join(', ')} ORDER BY ${def.statistic}() DESC LIMIT 500`;

/** Prefix of every guard alarm's name; the rest is the definition's name. */
export const guardAlarmPrefix = (stackName: string): string => `${stackName}-guard-`;

export interface GuardProps {
  readonly settings: MaasSettings;
  readonly modelBucket: ModelBucket;
  /** already resolved (see `resolveAlarmDefinitions`) */
  readonly alarms: readonly GuardAlarmDefinition[];
  /** variables rollback and promote read through `src/config` */
  readonly environment: Readonly<Record<string, string>>;
}

/**
 * The control loop: one multi-time-series alarm per definition, each contributor (model +
 * variant) in ALARM invoking rollback directly, and a schedule invoking promote. Both functions
 * may only rewrite `aliases.json` and append history; failed invocations go to a failure queue.
 */
export class Guard extends Construct {
  readonly rollback: MaasFunction;
  readonly promote: MaasFunction;
  readonly alarms: readonly Alarm[];
  readonly failures: FailureQueue;
  readonly schedule: Rule;

  constructor(scope: Construct, id: string, props: GuardProps) {
    super(scope, id);
    const { settings } = props;
    const prefix = guardAlarmPrefix(Stack.of(this).stackName);
    this.failures = new FailureQueue(this, 'Failures', { removalMode: settings.removalPolicy });
    const asyncInvocation = {
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      onFailure: new SqsDestination(this.failures.queue),
    };
    const environment = { ...props.environment, MAAS_GUARD_ALARM_PREFIX: prefix };

    this.rollback = new MaasFunction(this, 'Rollback', {
      name: 'rollback',
      description: 'Rolls back the model and variant whose guard alarm fired',
      settings,
      memoryMb: settings.control.memoryMb,
      timeoutSeconds: settings.control.timeoutSeconds,
      environment,
      async: asyncInvocation,
    });
    this.promote = new MaasFunction(this, 'Promote', {
      name: 'promote',
      description: 'Promotes candidates that baked with their guard alarms OK',
      settings,
      memoryMb: settings.control.memoryMb,
      timeoutSeconds: settings.control.timeoutSeconds,
      environment,
      async: asyncInvocation,
    });
    props.modelBucket.grantControl(this.rollback.function);
    props.modelBucket.grantControl(this.promote.function);

    const rollbackAction = new LambdaAction(this.rollback.function);
    this.alarms = props.alarms.map((def) => {
      const alarm = new Alarm(this, `Alarm-${def.name}`, {
        alarmName: prefix + def.name,
        alarmDescription:
          def.description ?? `${def.statistic}(${def.metricName}) > ${def.threshold}`,
        metric: new MathExpression({
          expression: guardQuery(def),
          period: Duration.seconds(def.periodSeconds),
          label: def.name,
        }),
        threshold: def.threshold,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: def.evaluationPeriods,
        datapointsToAlarm: def.datapointsToAlarm,
        // A contributor exists only while it has data: no traffic is not a failure.
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(rollbackAction);
      return alarm;
    });

    if (this.alarms.length > 0) {
      // promote confirms that a candidate's alarms are OK before making it production.
      Grant.addToPrincipal({
        grantee: this.promote.function,
        actions: ['cloudwatch:DescribeAlarms', 'cloudwatch:DescribeAlarmContributors'],
        resourceArns: this.alarms.map((alarm) => alarm.alarmArn),
      });
    }
    if (props.alarms.some((def) => def.minRequests > 0)) {
      // GetMetricData has no resource-level permissions: `*` is the narrowest resource there is.
      Grant.addToPrincipal({
        grantee: this.rollback.function,
        actions: ['cloudwatch:GetMetricData'],
        resourceArns: ['*'],
      });
    }

    this.schedule = new Rule(this, 'PromoteSchedule', {
      description: 'Invokes promote to graduate candidates whose bake time is over',
      schedule: Schedule.rate(Duration.minutes(settings.promoteEveryMinutes)),
      targets: [
        new LambdaFunction(this.promote.function, {
          deadLetterQueue: this.failures.queue,
          retryAttempts: 2,
          maxEventAge: Duration.hours(1),
        }),
      ],
    });
  }
}
