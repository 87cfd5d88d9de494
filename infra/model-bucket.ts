import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  ObjectOwnership,
  TargetObjectKeyFormat,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { INCOMING_PREFIX, REGISTRY_PREFIX } from '../src/registry/index.ts';
import { acknowledge, arnPatternFinding } from './nag.ts';
import type { RemovalMode } from './settings.ts';

export interface ModelBucketProps {
  /** `retain` keeps both buckets (and their objects) when the stack is deleted. */
  readonly removalMode: RemovalMode;
  /** days the server access logs are kept */
  readonly accessLogDays: number;
  /**
   * Days an overwritten or deleted object version is kept (aliases.json is rewritten on every
   * promote and rollback; old versions are its undo history).
   * @default 90
   */
  readonly noncurrentVersionDays?: number;
}

/**
 * The one model bucket of the storage contract: no public access, TLS only, encrypted at rest,
 * versioned, server access logs to a separate bucket, retained by default. Grants are per role
 * and scoped to the prefixes each function needs.
 */
export class ModelBucket extends Construct {
  readonly bucket: Bucket;
  readonly accessLogs: Bucket;

  constructor(scope: Construct, id: string, props: ModelBucketProps) {
    super(scope, id);
    const destroy = props.removalMode === 'destroy';
    const removalPolicy = destroy ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;

    this.accessLogs = new Bucket(this, 'AccessLogs', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      // S3 server access logging delivers only to buckets encrypted with S3-managed keys.
      encryption: BucketEncryption.S3_MANAGED,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(props.accessLogDays) }],
      removalPolicy,
      autoDeleteObjects: destroy,
    });

    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: BucketEncryption.S3_MANAGED,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'models/',
      targetObjectKeyFormat: TargetObjectKeyFormat.partitionedPrefix(),
      lifecycleRules: [
        {
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays ?? 90),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy,
      autoDeleteObjects: destroy,
    });
  }

  /** predict: reads the registry (and lists it, so a missing key is a 404, not a 403). */
  grantPredict(grantee: IGrantable): void {
    this.read(grantee, `${REGISTRY_PREFIX}*`);
  }

  /** ingest: reads uploads, reads and creates registry objects; deletes nothing. */
  grantIngest(grantee: IGrantable): void {
    this.read(grantee, `${INCOMING_PREFIX}*`);
    this.read(grantee, `${REGISTRY_PREFIX}*`);
    this.put(grantee, `${REGISTRY_PREFIX}*`);
  }

  /** rollback and promote: read the registry, rewrite only aliases and append only history. */
  grantControl(grantee: IGrantable): void {
    this.read(grantee, `${REGISTRY_PREFIX}*`);
    this.put(grantee, `${REGISTRY_PREFIX}*/aliases.json`);
    this.put(grantee, `${REGISTRY_PREFIX}*/history/*`);
  }

  private read(grantee: IGrantable, keyPattern: string): void {
    this.bucket.grantRead(grantee, keyPattern);
    acknowledgePolicy(grantee, {
      'AwsSolutions-IAM5[Action::s3:GetObject*]': GRANT_ACTIONS_REASON,
      'AwsSolutions-IAM5[Action::s3:GetBucket*]': GRANT_ACTIONS_REASON,
      'AwsSolutions-IAM5[Action::s3:List*]': GRANT_ACTIONS_REASON,
      [arnPatternFinding(this.bucket, keyPattern)]: prefixReason(keyPattern),
    });
  }

  private put(grantee: IGrantable, keyPattern: string): void {
    this.bucket.grantPut(grantee, keyPattern);
    acknowledgePolicy(grantee, {
      'AwsSolutions-IAM5[Action::s3:Abort*]': GRANT_ACTIONS_REASON,
      [arnPatternFinding(this.bucket, keyPattern)]: prefixReason(keyPattern),
    });
  }
}

/** The findings sit on the grantee's role (its policy), not on the function that assumes it. */
const acknowledgePolicy = (grantee: IGrantable, findings: Record<string, string>): void => {
  const principal = grantee.grantPrincipal;
  if (Construct.isConstruct(principal)) acknowledge(principal, findings);
};

const GRANT_ACTIONS_REASON =
  'the action set of Bucket.grantRead/grantPut, applied only to the key prefixes this role needs';
const prefixReason = (keyPattern: string): string =>
  `object keys of the storage contract this role works on (${keyPattern}); models are named at run time, so a key pattern is the narrowest resource`;
