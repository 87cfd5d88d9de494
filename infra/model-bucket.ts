import { CustomResourceProviderBase, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  AnyPrincipal,
  Effect,
  Grant,
  type IGrantable,
  type IRole,
  PolicyStatement,
} from 'aws-cdk-lib/aws-iam';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  ObjectOwnership,
  TargetObjectKeyFormat,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import {
  CREATE_ONLY_KEY_PATTERNS,
  INCOMING_PREFIX,
  REGISTRY_PREFIX,
} from '../src/registry/index.ts';
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
  /**
   * Days an upload under `incoming/` is kept. Ingest records its outcome (registered or rejected)
   * in the registry within hours; past that the upload is a second copy of the model.
   */
  readonly incomingExpirationDays: number;
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
        {
          id: 'ExpireUploads',
          prefix: INCOMING_PREFIX,
          expiration: Duration.days(props.incomingExpirationDays),
          // the expired upload becomes a noncurrent version: gone a day later, not 90
          noncurrentVersionExpiration: Duration.days(1),
        },
      ],
      removalPolicy,
      autoDeleteObjects: destroy,
    });
  }

  /**
   * predict: reads registry objects. `s3:ListBucket` is the only bucket-level action: without it
   * S3 answers a missing key with 403 instead of 404
   * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions), and the runtime
   * lists models and versions. No `s3:List*`, no object versions, no multipart listings.
   */
  grantPredict(grantee: IGrantable): void {
    this.list(grantee);
    this.read(grantee, `${REGISTRY_PREFIX}*`);
  }

  /** ingest: reads uploads, reads and creates registry objects; deletes nothing. */
  grantIngest(grantee: IGrantable): void {
    this.list(grantee);
    this.read(grantee, `${INCOMING_PREFIX}*`);
    this.read(grantee, `${REGISTRY_PREFIX}*`);
    this.put(grantee, `${REGISTRY_PREFIX}*`);
  }

  /** rollback and promote: read the registry, rewrite only aliases and append only history. */
  grantControl(grantee: IGrantable): void {
    this.list(grantee);
    this.read(grantee, `${REGISTRY_PREFIX}*`);
    this.put(grantee, `${REGISTRY_PREFIX}*/aliases.json`);
    this.put(grantee, `${REGISTRY_PREFIX}*/history/*`);
  }

  /**
   * Immutability enforced by S3 itself, whatever a principal's IAM policy allows: only `writers`
   * (the platform's roles and the configured operator roles) may write or delete under
   * `registry/`, every write there must be conditional, and a version's objects and history can
   * only be created (`If-None-Match: *`), never overwritten. Call once every writer exists.
   *
   * Conditional writes are enforced as AWS documents in "Enforce conditional writes on Amazon S3
   * buckets": https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html
   * (`s3:if-none-match` / `s3:if-match` are null when the header is absent; `s3:ObjectCreationOperation`
   * is false for CreateMultipartUpload, UploadPart and UploadPartCopy, which take no conditional
   * header, so the parts of a conditional CompleteMultipartUpload are exempt).
   */
  lockRegistry(writers: readonly IRole[], operatorRoleArns: readonly string[]): void {
    const registryObjects = this.bucket.arnForObjects(`${REGISTRY_PREFIX}*`);
    const allowed = [
      ...writers.map((role) => role.roleArn),
      ...operatorRoleArns,
      ...this.autoDeleteRoleArns(),
    ];
    this.bucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'RegistryWritesOnlyByPlatformRoles',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: REGISTRY_WRITE_ACTIONS,
        resources: [registryObjects],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': allowed } },
      }),
    );
    this.bucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'RegistryWritesConditional',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [registryObjects],
        conditions: {
          Null: { 's3:if-none-match': 'true', 's3:if-match': 'true' },
          Bool: { 's3:ObjectCreationOperation': 'true' },
        },
      }),
    );
    this.bucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'VersionObjectsCreateOnly',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: CREATE_ONLY_KEY_PATTERNS.map((pattern) => this.bucket.arnForObjects(pattern)),
        conditions: {
          Null: { 's3:if-none-match': 'true' },
          Bool: { 's3:ObjectCreationOperation': 'true' },
        },
      }),
    );
  }

  /** With `removalPolicy: destroy`, CDK's auto-delete function empties the bucket: registry too. */
  private autoDeleteRoleArns(): string[] {
    return Stack.of(this)
      .node.findAll()
      .filter(
        (c): c is CustomResourceProviderBase =>
          c instanceof CustomResourceProviderBase && c.node.id.includes('S3AutoDeleteObjects'),
      )
      .map((provider) => provider.roleArn);
  }

  private list(grantee: IGrantable): void {
    Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
    });
  }

  private read(grantee: IGrantable, keyPattern: string): void {
    Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject'],
      resourceArns: [this.bucket.arnForObjects(keyPattern)],
    });
    acknowledgePolicy(grantee, {
      [arnPatternFinding(this.bucket, keyPattern)]: prefixReason(keyPattern),
    });
  }

  private put(grantee: IGrantable, keyPattern: string): void {
    Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject'],
      resourceArns: [this.bucket.arnForObjects(keyPattern)],
    });
    acknowledgePolicy(grantee, {
      [arnPatternFinding(this.bucket, keyPattern)]: prefixReason(keyPattern),
    });
  }
}

/** Everything that creates, replaces, re-tags or removes an object or one of its versions. */
export const REGISTRY_WRITE_ACTIONS = [
  's3:PutObject',
  's3:PutObjectAcl',
  's3:PutObjectTagging',
  's3:PutObjectVersionTagging',
  's3:PutObjectRetention',
  's3:PutObjectLegalHold',
  's3:DeleteObject',
  's3:DeleteObjectVersion',
  's3:DeleteObjectTagging',
  's3:DeleteObjectVersionTagging',
  's3:RestoreObject',
  's3:ReplicateObject',
  's3:ReplicateDelete',
];

/** The findings sit on the grantee's role (its policy), not on the function that assumes it. */
const acknowledgePolicy = (grantee: IGrantable, findings: Record<string, string>): void => {
  const principal = grantee.grantPrincipal;
  if (Construct.isConstruct(principal)) acknowledge(principal, findings);
};

const prefixReason = (keyPattern: string): string =>
  `object keys of the storage contract this role works on (${keyPattern}); models are named at run time, so a key pattern is the narrowest resource`;
