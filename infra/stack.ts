import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
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
