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
import { type CfnTopic, Topic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { MaasError } from '../src/errors/index.ts';
import { FailureQueue } from './failure-queue.ts';
import { MaasFunction } from './maas-function.ts';
import type { ModelBucket } from './model-bucket.ts';
import { acknowledge } from './nag.ts';
import type { MaasSettings } from './settings.ts';

/**
 * One health rule as the cloud alarm needs it; `src/guard`'s `AlarmDefinition` is one (the same
 * rules drive the local stack's evaluator and the functions' confirmation). The alarm goes to
 * ALARM for a contributor (one series of the query's `GROUP BY`) when the query's value is above
 * `threshold` in `datapointsToAlarm` of the last `evaluationPeriods` periods; each contributor in
 * ALARM invokes rollback with its attributes.
 *
 * A Metrics Insights alarm is one query over one metric with AVG, COUNT, MAX, MIN or SUM: it can
 * neither count requests alongside (`minRequests`) nor compute a percentile. The alarm is the
 * trigger; rollback and promote confirm the rule with GetMetricData before they act.
 */
export interface GuardAlarmDefinition {
  /** stable id (lower-case, digits, hyphens): the alarm is `<stack>-guard-<name>` */
  readonly name: string;
  /** what the alarm means, shown in the console and in notifications */
  readonly description: string;
  /** a Metrics Insights query with `GROUP BY`: one contributor per series */
  readonly query: string;
  /** alarm when the query's value is greater than this */
  readonly threshold: number;
  /** seconds per datapoint: a multiple of 60 (Metrics Insights has no high-resolution data) */
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
}

/** A rule the guard cannot turn into a CloudWatch alarm. */
export class InvalidAlarmDefinitionError extends MaasError {
  constructor(problems: readonly string[]) {
    super(
      'InvalidAlarmDefinition',
      `Guard rules CloudWatch cannot alarm on:\n  - ${problems.join('\n  - ')}`,
      { details: { problems } },
    );
  }
}

/** Metrics Insights alarms evaluate at most the latest three hours of data. */
const MAX_WINDOW_SECONDS = 3 * 60 * 60;

const definitionProblems = (def: GuardAlarmDefinition): string[] => {
  const problems: string[] = [];
  const at = `rule "${def.name}"`;
  if (!/^[a-z][a-z0-9-]{0,47}$/.test(def.name)) {
    problems.push(
      `${at}: the name must be 1–48 lower-case letters, digits or hyphens, starting with a letter`,
    );
  }
  if (!/^SELECT\s.+\sFROM\s.+\sGROUP BY\s/i.test(def.query)) {
    problems.push(
      `${at}: the query must be a Metrics Insights query with GROUP BY (one contributor per model), got ${JSON.stringify(def.query)}`,
    );
  }
  if (!Number.isFinite(def.threshold))
    problems.push(`${at}: the threshold must be a finite number`);
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
  return problems;
};

/** Throws one InvalidAlarmDefinitionError listing every rule CloudWatch could not alarm on. */
export const validateAlarmDefinitions = (definitions: readonly GuardAlarmDefinition[]): void => {
  const problems = definitions.flatMap(definitionProblems);
  const names = definitions.map((def) => def.name);
  const duplicates = names.filter((name, i) => names.indexOf(name) !== i);
  if (duplicates.length > 0) {
    problems.push(`duplicate rule names: ${[...new Set(duplicates)].join(', ')}`);
  }
  if (problems.length > 0) throw new InvalidAlarmDefinitionError(problems);
};

/** Prefix of every guard alarm's name; the rest is the rule's name. */
export const guardAlarmPrefix = (stackName: string): string => `${stackName}-guard-`;

export interface GuardProps {
  readonly settings: MaasSettings;
  readonly modelBucket: ModelBucket;
  /** the rules, thresholds already applied (validated here) */
  readonly alarms: readonly GuardAlarmDefinition[];
  /** variables rollback and promote read through `src/config` and `src/guard` */
  readonly environment: Readonly<Record<string, string>>;
}

/**
 * The control loop: one multi-time-series alarm per rule, each contributor in ALARM invoking
 * rollback directly, and a schedule invoking promote. Both functions may only rewrite
 * `aliases.json` and append history, read CloudWatch's figures to confirm a rule before acting,
 * and announce what they did on the alerts topic; failed invocations go to a failure queue.
 */
export class Guard extends Construct {
  readonly rollback: MaasFunction;
  readonly promote: MaasFunction;
  readonly alarms: readonly Alarm[];
  readonly alerts: Topic;
  readonly failures: FailureQueue;
  readonly schedule: Rule;

  constructor(scope: Construct, id: string, props: GuardProps) {
    super(scope, id);
    const { settings } = props;
    validateAlarmDefinitions(props.alarms);
    const prefix = guardAlarmPrefix(Stack.of(this).stackName);

    this.alerts = new Topic(this, 'Alerts', {
      displayName: 'onnx-maas rollbacks and promotions',
      enforceSSL: true,
    });
    // Encrypted with the AWS-managed SNS key, whose key policy lets the account's publishers use
    // it through SNS: set on the L1 resource so grantPublish adds no kms:* on every key.
    (this.alerts.node.defaultChild as CfnTopic).kmsMasterKeyId = 'alias/aws/sns';
    this.failures = new FailureQueue(this, 'Failures', { removalMode: settings.removalPolicy });
    const asyncInvocation = {
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      onFailure: new SqsDestination(this.failures.queue),
    };
    const environment = {
      ...props.environment,
      MAAS_GUARD_ALARM_PREFIX: prefix,
      // The functions rebuild the rules from src/guard: with the same thresholds as the alarms.
      MAAS_ALARM_THRESHOLDS: JSON.stringify(settings.alarmThresholds),
      MAAS_PROMOTE_EVERY_MINUTES: String(settings.promoteEveryMinutes),
      MAAS_ALERT_TOPIC_ARN: this.alerts.topicArn,
    };

    this.rollback = new MaasFunction(this, 'Rollback', {
      name: 'rollback',
      description:
        'Rolls back the model version whose guard alarm fired, once the rule is confirmed',
      settings,
      memoryMb: settings.control.memoryMb,
      timeoutSeconds: settings.control.timeoutSeconds,
      environment,
      async: asyncInvocation,
      // A predict spike may use every unreserved instance of the account: rollback keeps its own.
      reservedConcurrency: settings.rollbackReservedConcurrency,
    });
    this.promote = new MaasFunction(this, 'Promote', {
      name: 'promote',
      description: 'Promotes candidates that baked with their guard rules healthy',
      settings,
      memoryMb: settings.control.memoryMb,
      timeoutSeconds: settings.control.timeoutSeconds,
      environment,
      async: asyncInvocation,
    });
    for (const fn of [this.rollback, this.promote]) {
      props.modelBucket.grantControl(fn.function);
      this.alerts.grantPublish(fn.function);
      // GetMetricData has no resource-level permissions: `*` is the narrowest resource there is.
      Grant.addToPrincipal({
        grantee: fn.function,
        actions: ['cloudwatch:GetMetricData'],
        resourceArns: ['*'],
      });
      acknowledge(fn.role, {
        'AwsSolutions-IAM5[Resource::*]':
          'xray:PutTraceSegments/PutTelemetryRecords (tracing) and cloudwatch:GetMetricData (rule confirmation) have no resource-level permissions',
      });
    }

    const rollbackAction = new LambdaAction(this.rollback.function);
    this.alarms = props.alarms.map((def) => {
      const alarm = new Alarm(this, `Alarm-${def.name}`, {
        alarmName: prefix + def.name,
        alarmDescription: def.description,
        metric: new MathExpression({
          expression: def.query,
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
