import {
  Annotations,
  CfnOutput,
  CfnResource,
  RemovalPolicy,
  Stack,
  type StackProps,
} from 'aws-cdk-lib';
import { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { alarmDefinitions } from '../src/guard/index.ts';
import { MaasDashboard } from './dashboard.ts';
import { Guard, type GuardAlarmDefinition } from './guard.ts';
import { Ingest } from './ingest.ts';
import { ModelBucket } from './model-bucket.ts';
import { ALERT_TOPIC_OUTPUT, STACK_OUTPUTS as OUTPUTS } from './outputs.ts';
import { PredictApi } from './predict-api.ts';
import type { MaasSettings } from './settings.ts';

export interface MaasStackProps extends StackProps {
  readonly settings: MaasSettings;
  /**
   * The guard's health rules, thresholds applied.
   * @default - the rules of `src/guard` with the thresholds of `maas:alarmThresholds`, the same
   * the rollback and promote functions rebuild from their environment
   */
  readonly alarms?: readonly GuardAlarmDefinition[];
}

/** The whole platform in one stack: bucket, predict API, ingest, guard, dashboard. */
export class MaasStack extends Stack {
  readonly modelBucket: ModelBucket;
  readonly predict: PredictApi;
  readonly ingest: Ingest;
  readonly guard: Guard;
  readonly dashboard: MaasDashboard;

  constructor(scope: Construct, id: string, props: MaasStackProps) {
    super(scope, id, props);
    const { settings } = props;
    // Each cloud alarm is its rule's trigger: it fires on the trigger threshold, and rollback
    // judges the rule itself (docs/guard.md).
    const alarms =
      props.alarms ??
      alarmDefinitions({
        overrides: Object.fromEntries(
          Object.entries(settings.alarmThresholds).map(([name, threshold]) => [
            name,
            { threshold },
          ]),
        ),
      }).map((def) => ({ ...def, threshold: def.triggerThreshold }));

    this.modelBucket = new ModelBucket(this, 'Models', {
      removalMode: settings.removalPolicy,
      accessLogDays: settings.logRetentionDays,
      incomingExpirationDays: settings.incomingExpirationDays,
    });
    // The names `src/config` reads; AWS_REGION is set by Lambda itself.
    const storage = { MAAS_BUCKET: this.modelBucket.bucket.bucketName };

    this.predict = new PredictApi(this, 'Predict', {
      settings,
      modelBucket: this.modelBucket,
      environment: {
        ...storage,
        MAAS_EXPLAIN: settings.predict.explain ? 'on' : 'off',
        ...(settings.predict.explainMaxBudget === undefined
          ? {}
          : { MAAS_EXPLAIN_MAX_BUDGET: String(settings.predict.explainMaxBudget) }),
      },
    });
    this.ingest = new Ingest(this, 'Ingest', {
      settings,
      modelBucket: this.modelBucket,
      environment: {
        ...storage,
        MAAS_CANARY_WEIGHT: String(settings.canaryWeight),
        MAAS_BAKE_MINUTES: String(settings.bakeMinutes),
      },
    });
    this.guard = new Guard(this, 'Guard', {
      settings,
      modelBucket: this.modelBucket,
      alarms,
      environment: {
        ...storage,
        // a request may answer until the predict time-out, and its log line becomes a metric
        // within about a minute: only then does an unfinished request count as a failure
        MAAS_GUARD_SETTLE_SECONDS: String(settings.predict.timeoutSeconds + 60),
      },
    });
    this.modelBucket.lockRegistry(
      [this.ingest.handler.role, this.guard.rollback.role, this.guard.promote.role],
      settings.operatorRoleArns,
    );
    this.dashboard = new MaasDashboard(this, 'Dashboard', {
      dashboardName: this.stackName,
      alarms: this.guard.alarms,
      functions: {
        predict: this.predict.handler.function,
        ingest: this.ingest.handler.function,
        rollback: this.guard.rollback.function,
        promote: this.guard.promote.function,
      },
      failureQueues: { ingest: this.ingest.failures.queue, guard: this.guard.failures.queue },
    });

    keepLogsOfEveryFunction(this, settings);
    warnAboutReservedConcurrency(this, settings);

    new CfnOutput(this, OUTPUTS.apiUrl, {
      value: this.predict.url,
      description: 'Base URL of the inference API (SigV4-signed with IAM auth)',
    });
    new CfnOutput(this, OUTPUTS.bucketName, {
      value: this.modelBucket.bucket.bucketName,
      description: 'Model bucket: upload to incoming/<model>/<file>.onnx',
    });
    new CfnOutput(this, OUTPUTS.dashboardUrl, {
      value: this.dashboard.url,
      description: 'CloudWatch dashboard',
    });
    new CfnOutput(this, OUTPUTS.region, { value: this.region, description: 'Region of the stack' });
    new CfnOutput(this, ALERT_TOPIC_OUTPUT, {
      value: this.guard.alerts.topicArn,
      description: 'SNS topic announcing rollbacks and promotions: subscribe to it',
    });
  }
}

/**
 * CDK's own deployment-time functions (the bucket-notifications handler, the auto-delete
 * provider) log to a group Lambda creates on first run, kept forever: give each one of ours,
 * with the configured retention, as our functions have.
 */
const keepLogsOfEveryFunction = (stack: Stack, settings: MaasSettings): void => {
  const unmanaged = stack.node
    .findAll()
    .filter(
      (c): c is CfnResource =>
        c instanceof CfnResource &&
        c.cfnResourceType === 'AWS::Lambda::Function' &&
        !(c instanceof CfnFunction && c.loggingConfig !== undefined),
    );
  for (const fn of unmanaged) {
    const logGroup = new LogGroup(stack, `${fn.node.scope?.node.id ?? fn.node.id}Logs`, {
      retention: settings.logRetentionDays,
      removalPolicy:
        settings.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    fn.addPropertyOverride('LoggingConfig', { LogGroup: logGroup.logGroupName });
  }
};

/** Lambda keeps 100 instances of an account unreserved; every reservation comes out of the rest. */
export const UNRESERVED_MINIMUM = 100;

/**
 * Reserved concurrency is taken from the account's quota, and a deploy fails when what is left
 * unreserved would drop below 100 ("You can reserve up to the Unreserved account concurrency
 * value ... minus 100": https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
 * New accounts can start with a quota far below the default 1000, so say it at every synth.
 */
const warnAboutReservedConcurrency = (stack: Stack, settings: MaasSettings): void => {
  const predict = settings.predict.reservedConcurrency ?? 0;
  const rollback = settings.rollbackReservedConcurrency;
  const reserved = predict + rollback;
  Annotations.of(stack).addWarningV2(
    'maas:reservedConcurrency',
    `this stack reserves ${reserved} concurrent executions (predict ${predict}, rollback ${rollback}) ` +
      `out of the account's Lambda concurrency quota; the deploy fails unless the quota is at least ` +
      `${reserved + UNRESERVED_MINIMUM} (Lambda keeps ${UNRESERVED_MINIMUM} unreserved). Check ` +
      '`aws lambda get-account-settings` (AccountLimit.ConcurrentExecutions, UnreservedConcurrentExecutions), ' +
      'lower maas:predictReservedConcurrency / maas:rollbackReservedConcurrency, or request a quota increase.',
  );
};
