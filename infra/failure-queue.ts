import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';
import type { RemovalMode } from './settings.ts';

export interface FailureQueueProps {
  readonly removalMode: RemovalMode;
  /**
   * How long a failed event waits for someone to look at it (SQS keeps messages 14 days at most).
   * @default 14 days
   */
  readonly retention?: Duration;
}

/**
 * Where an asynchronous invocation lands after its last retry: the original event with the
 * error, encrypted at rest and reachable over TLS only.
 */
export class FailureQueue extends Construct {
  readonly queue: Queue;

  constructor(scope: Construct, id: string, props: FailureQueueProps) {
    super(scope, id);
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: props.retention ?? Duration.days(14),
      removalPolicy: props.removalMode === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    const reason =
      'this queue is itself the end of the line for failed events (a Lambda on-failure destination); nothing consumes it automatically, so a further DLQ would never receive anything';
    acknowledge(this.queue, { 'AwsSolutions-SQS3': reason, 'Serverless-SQSRedrivePolicy': reason });
  }
}
