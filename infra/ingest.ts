import { Duration, Stack } from 'aws-cdk-lib';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { EventType } from 'aws-cdk-lib/aws-s3';
import { LambdaDestination } from 'aws-cdk-lib/aws-s3-notifications';
import { Construct } from 'constructs';
import { INGEST_PROCESS_ENV, ingestDiskNeededMb, ingestNodeOptions } from '../src/ingest/memory.ts';
import { INCOMING_PREFIX, MODEL_SUFFIX } from '../src/registry/index.ts';
import { FailureQueue } from './failure-queue.ts';
import { MaasFunction } from './maas-function.ts';
import type { ModelBucket } from './model-bucket.ts';
import { acknowledge } from './nag.ts';
import type { MaasSettings } from './settings.ts';

export interface IngestProps {
  readonly settings: MaasSettings;
  readonly modelBucket: ModelBucket;
  /** variables ingest reads through `src/config` */
  readonly environment: Readonly<Record<string, string>>;
}

/**
 * Upload → registry: the ingest function, triggered by ObjectCreated under `incoming/` for `.onnx`
 * keys only. It writes only under `registry/`, so its own writes can never trigger it again.
 * Failed events are retried by Lambda, then parked in an encrypted failure queue.
 */
export class Ingest extends Construct {
  readonly handler: MaasFunction;
  readonly failures: FailureQueue;

  constructor(scope: Construct, id: string, props: IngestProps) {
    super(scope, id);
    const { settings } = props;

    this.failures = new FailureQueue(this, 'Failures', { removalMode: settings.removalPolicy });
    this.handler = new MaasFunction(this, 'Ingest', {
      name: 'ingest',
      description: 'Validates, quantizes and registers models uploaded under incoming/',
      settings,
      memoryMb: settings.ingest.memoryMb,
      // the upload and its variants wait in a work dir under /tmp (src/ingest/model-file.ts)
      ephemeralStorageMb: ingestDiskNeededMb(settings.ingest.maxModelMb),
      timeoutSeconds: settings.ingest.timeoutSeconds,
      onnxRuntime: true,
      nodeOptions: ingestNodeOptions(settings.ingest.memoryMb),
      environment: {
        ...INGEST_PROCESS_ENV,
        ...props.environment,
        MAAS_MAX_MODEL_BYTES: String(settings.ingest.maxModelMb * 1024 * 1024),
      },
      async: {
        retryAttempts: settings.ingest.retryAttempts,
        maxEventAge: Duration.seconds(settings.ingest.maxEventAgeSeconds),
        onFailure: new SqsDestination(this.failures.queue),
      },
    });
    props.modelBucket.grantIngest(this.handler.function);

    props.modelBucket.bucket.addEventNotification(
      EventType.OBJECT_CREATED,
      new LambdaDestination(this.handler.function),
      { prefix: INCOMING_PREFIX, suffix: MODEL_SUFFIX },
    );
    acknowledgeNotificationsHandler(Stack.of(this));
  }
}

/**
 * S3 notifications are configured by a CDK-provided singleton function (it breaks the circular
 * dependency between the bucket and the function's permission); its role is not configurable.
 */
const acknowledgeNotificationsHandler = (stack: Stack): void => {
  const handler = stack.node.children.find((child) =>
    child.node.id.startsWith('BucketNotificationsHandler'),
  );
  const role = handler?.node.tryFindChild('Role');
  if (role === undefined) return;
  acknowledge(role, {
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
      "role of CDK's BucketNotificationsHandler (runs only during deployment to set the upload trigger); CDK does not expose it for a narrower policy",
  });
};
