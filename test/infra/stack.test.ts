import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ALERT_TOPIC_OUTPUT, STACK_OUTPUTS } from '../../infra/outputs.ts';
import { DEFAULT_ALARM_DEFINITIONS } from '../../src/guard/index.ts';
import { type Synthesized, synthesize } from './synth.ts';

type Json = Record<string, unknown>;
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

/** Actions that accept no resource but `*` (AWS service authorization reference). */
const RESOURCELESS_ACTIONS = new Set([
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'cloudwatch:GetMetricData',
]);

const OPERATOR_ROLE = 'arn:aws:iam::123456789012:role/maas-operator';
const VARIANT_CONTEXT = {
  'maas:architecture': 'x86_64',
  'maas:auth': 'jwt',
  'maas:jwtIssuer': 'https://issuer.example.com/',
  'maas:jwtAudience': 'maas-clients',
  'maas:removalPolicy': 'destroy',
  'maas:predictReservedConcurrency': 4,
  'maas:predictProvisionedConcurrency': 2,
  'maas:alarmThresholds': { latency: 750 },
  'maas:explain': 'off',
  'maas:explainMaxBudget': 256,
  'maas:operatorRoleArns': [OPERATOR_ROLE],
  'maas:corsOrigins': ['https://app.example.com'],
  'maas:incomingExpirationDays': 3,
};

let base: Synthesized;
let variant: Synthesized;

beforeAll(() => {
  base = synthesize();
  variant = synthesize(VARIANT_CONTEXT);
});
afterAll(() => {
  base?.dispose();
  variant?.dispose();
});

const resources = (s: Synthesized, type: string): [string, Json][] =>
  Object.entries(s.template.findResources(type)) as [string, Json][];
const props = (resource: Json): Json => resource.Properties as Json;
const logicalId = (construct: IConstruct): string =>
  Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
const asList = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** Our four functions, by name, as logical ids. */
type FunctionIds = Record<
  'predict' | 'ingest' | 'rollback' | 'promote',
  { fn: string; role: string }
>;
const functions = (s: Synthesized): FunctionIds => {
  const of = (handler: { function: IConstruct; role: IConstruct }) => ({
    fn: logicalId(handler.function),
    role: logicalId(handler.role),
  });
  return {
    predict: of(s.stack.predict.handler),
    ingest: of(s.stack.ingest.handler),
    rollback: of(s.stack.guard.rollback),
    promote: of(s.stack.guard.promote),
  };
};

/** Every statement of the policies attached to a role. */
const statementsOf = (s: Synthesized, role: string): Statement[] =>
  resources(s, 'AWS::IAM::Policy')
    .filter(([, policy]) =>
      (props(policy).Roles as unknown[]).some(
        (r) => JSON.stringify(r) === JSON.stringify({ Ref: role }),
      ),
    )
    .flatMap(
      ([, policy]) => (props(policy).PolicyDocument as { Statement: Statement[] }).Statement,
    );

/** A policy resource as readable text: `<BucketLogicalId>/registry/*`, or `*`. */
const resourceText = (resource: unknown): string => {
  if (typeof resource === 'string') return resource;
  const r = resource as Json;
  if (r['Fn::GetAtt']) return `<${(r['Fn::GetAtt'] as string[])[0]}>`;
  if (r['Fn::Join']) {
    const [, parts] = r['Fn::Join'] as [string, unknown[]];
    return parts.map(resourceText).join('');
  }
  if (r.Ref) return `<${r.Ref as string}>`;
  return JSON.stringify(r);
};

/** Object key patterns a role may call the given S3 actions on (bucket-level ARNs left out). */
const keyPatterns = (s: Synthesized, role: string, action: RegExp): string[] => {
  const bucket = `<${logicalId(s.stack.modelBucket.bucket)}>`;
  return statementsOf(s, role)
    .filter((st) => asList(st.Action).some((a) => action.test(a)))
    .flatMap((st) => asList(st.Resource).map(resourceText))
    .filter((text) => text !== bucket)
    .map((text) => (text.startsWith(`${bucket}/`) ? text.slice(bucket.length + 1) : text))
    .sort();
};

const S3_WRITE = /^s3:(Put|Delete|Abort|Replicate|Restore|\*)/;
const S3_READ = /^s3:(Get|List)/;

describe('model bucket', () => {
  it('blocks public access, encrypts, versions, logs access to its own bucket and is retained', () => {
    base.template.hasResource('AWS::S3::Bucket', {
      Properties: {
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
          ],
        },
        VersioningConfiguration: { Status: 'Enabled' },
        LoggingConfiguration: {
          DestinationBucketName: { Ref: logicalId(base.stack.modelBucket.accessLogs) },
        },
      },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('refuses every request that is not TLS 1.2+, on both buckets', () => {
    for (const bucket of [base.stack.modelBucket.bucket, base.stack.modelBucket.accessLogs]) {
      base.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: logicalId(bucket) },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 's3:*',
              Principal: { AWS: '*' },
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
            Match.objectLike({
              Effect: 'Deny',
              Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
            }),
          ]),
        },
      });
    }
  });

  it('keeps the access logs private, encrypted and retained too', () => {
    const [, logs] = resources(base, 'AWS::S3::Bucket').find(
      ([id]) => id === logicalId(base.stack.modelBucket.accessLogs),
    ) ?? ['', {}];
    expect(logs).toMatchObject({
      DeletionPolicy: 'Retain',
      Properties: {
        PublicAccessBlockConfiguration: { BlockPublicPolicy: true, RestrictPublicBuckets: true },
        BucketEncryption: expect.anything(),
      },
    });
  });

  it('is emptied and deleted with the stack only when removalPolicy is destroy', () => {
    expect(resources(variant, 'AWS::S3::Bucket').map(([, b]) => b.DeletionPolicy)).toEqual([
      'Delete',
      'Delete',
    ]);
    expect(resources(variant, 'Custom::S3AutoDeleteObjects')).toHaveLength(2);
    expect(resources(base, 'Custom::S3AutoDeleteObjects')).toHaveLength(0);
  });
});

/** The model bucket's policy statements, by Sid. */
const bucketStatements = (s: Synthesized): Record<string, Json> => {
  const [policy] = Object.values(
    s.template.findResources('AWS::S3::BucketPolicy', {
      Properties: { Bucket: { Ref: logicalId(s.stack.modelBucket.bucket) } },
    }),
  ) as Json[];
  const statements = (props(policy ?? {}).PolicyDocument as { Statement: Json[] }).Statement;
  return Object.fromEntries(statements.map((st) => [String(st.Sid), st]));
};
const roleArn = (construct: IConstruct) => ({ 'Fn::GetAtt': [logicalId(construct), 'Arn'] });

describe('registry lock (bucket policy)', () => {
  it('denies every write under registry/ to any principal but the platform roles', () => {
    const st = bucketStatements(base).RegistryWritesOnlyByPlatformRoles ?? {};
    expect(st).toMatchObject({ Effect: 'Deny', Principal: { AWS: '*' } });
    expect(st.Action).toEqual(
      expect.arrayContaining(['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion']),
    );
    expect(asList(st.Resource).map(resourceText)).toEqual([
      `<${logicalId(base.stack.modelBucket.bucket)}>/registry/*`,
    ]);
    expect((st.Condition as Json).ArnNotEquals).toEqual({
      'aws:PrincipalArn': [
        roleArn(base.stack.ingest.handler.role),
        roleArn(base.stack.guard.rollback.role),
        roleArn(base.stack.guard.promote.role),
      ],
    });
  });

  it('lets the configured operator roles write too, and the auto-delete function when destroying', () => {
    const st = bucketStatements(variant).RegistryWritesOnlyByPlatformRoles ?? {};
    const allowed = ((st.Condition as Json).ArnNotEquals as Json)['aws:PrincipalArn'] as unknown[];
    expect(allowed).toContain(OPERATOR_ROLE);
    expect(allowed).toHaveLength(5);
  });

  it('requires a conditional header on every registry write (multipart parts exempted)', () => {
    expect(bucketStatements(base).RegistryWritesConditional).toMatchObject({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 's3:PutObject',
      Condition: {
        Null: { 's3:if-none-match': 'true', 's3:if-match': 'true' },
        Bool: { 's3:ObjectCreationOperation': 'true' },
      },
    });
  });

  it("requires If-None-Match for a version's objects and history: created once, never replaced", () => {
    const st = bucketStatements(base).VersionObjectsCreateOnly ?? {};
    expect(st).toMatchObject({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 's3:PutObject',
      Condition: {
        Null: { 's3:if-none-match': 'true' },
        Bool: { 's3:ObjectCreationOperation': 'true' },
      },
    });
    const bucket = `<${logicalId(base.stack.modelBucket.bucket)}>/`;
    expect(
      asList(st?.Resource)
        .map((r) => resourceText(r).replace(bucket, ''))
        .sort(),
    ).toEqual(
      [
        'registry/*/model.onnx',
        'registry/*/model.int8.onnx',
        'registry/*/manifest.json',
        'registry/*/reserved.json',
        'registry/*/history/*',
      ].sort(),
    );
  });

  it('expires uploads under incoming/ after the configured days (7 by default)', () => {
    for (const [s, days] of [
      [base, 7],
      [variant, 3],
    ] as const) {
      s.template.hasResourceProperties('AWS::S3::Bucket', {
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({
              Prefix: 'incoming/',
              ExpirationInDays: days,
              NoncurrentVersionExpiration: { NoncurrentDays: 1 },
              Status: 'Enabled',
            }),
          ]),
        },
      });
    }
  });
});

describe('predict API', () => {
  it('answers no CORS preflight unless origins are configured', () => {
    const [[, api] = ['', {}]] = resources(base, 'AWS::ApiGatewayV2::Api');
    expect(props(api).CorsConfiguration).toBeUndefined();
    variant.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: {
        AllowOrigins: ['https://app.example.com'],
        AllowHeaders: ['authorization', 'content-type', 'inference-header-content-length'],
        AllowMethods: ['GET', 'POST', 'OPTIONS'],
        ExposeHeaders: Match.arrayWith(['x-maas-model-version', 'x-maas-variant']),
      },
    });
  });

  it('requires IAM (SigV4) authorisation on every route', () => {
    const routes = resources(base, 'AWS::ApiGatewayV2::Route').map(([, r]) => props(r));
    expect(routes.map((r) => r.RouteKey).sort()).toEqual([
      'ANY /v1/{proxy+}',
      'ANY /v2',
      'ANY /v2/{proxy+}',
    ]);
    for (const route of routes) expect(route.AuthorizationType).toBe('AWS_IAM');
  });

  it('requires a JWT from the configured issuer and audience on every route in jwt mode', () => {
    const [[authorizerId, authorizer] = ['', {}]] = resources(
      variant,
      'AWS::ApiGatewayV2::Authorizer',
    );
    expect(props(authorizer)).toMatchObject({
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: 'https://issuer.example.com/', Audience: ['maas-clients'] },
    });
    const routes = resources(variant, 'AWS::ApiGatewayV2::Route').map(([, r]) => props(r));
    expect(routes).toHaveLength(3);
    for (const route of routes) {
      expect(route).toMatchObject({
        AuthorizationType: 'JWT',
        AuthorizerId: { Ref: authorizerId },
      });
    }
  });

  it('throttles the stage and writes one JSON access-log line per request, kept as configured', () => {
    const [[, stage] = ['', {}]] = resources(base, 'AWS::ApiGatewayV2::Stage');
    const stageProps = props(stage) as {
      DefaultRouteSettings: Json;
      AccessLogSettings: { Format: string; DestinationArn: Json };
    };
    expect(stageProps.DefaultRouteSettings).toMatchObject({
      ThrottlingRateLimit: 100,
      ThrottlingBurstLimit: 200,
    });
    expect(JSON.parse(stageProps.AccessLogSettings.Format)).toMatchObject({
      requestId: '$context.requestId',
      status: '$context.status',
      caller: '$context.identity.userArn',
    });
    const logGroup = (stageProps.AccessLogSettings.DestinationArn['Fn::GetAtt'] as string[])[0];
    base.template.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 30 },
      DeletionPolicy: 'Retain',
    });
    expect(logGroup).toBe(logicalId(base.stack.predict.accessLogs));
  });

  it('invokes predict with payload 2.0, through the provisioned alias when instances are provisioned', () => {
    base.template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [functions(base).predict.fn, 'Arn'] },
      TimeoutInMillis: 16_000,
    });
    variant.template.hasResourceProperties('AWS::Lambda::Alias', {
      Name: 'live',
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 },
    });
    const [[aliasId] = ['']] = resources(variant, 'AWS::Lambda::Alias');
    variant.template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationUri: { Ref: aliasId },
    });
    variant.template.hasResourceProperties('AWS::Lambda::Function', {
      ReservedConcurrentExecutions: 4,
    });
  });
});

describe('concurrency and logs', () => {
  it('reserves instances for rollback, so a predict spike cannot throttle it', () => {
    const fn = base.template.findResources('AWS::Lambda::Function')[functions(base).rollback.fn];
    expect(props(fn as Json).ReservedConcurrentExecutions).toBe(2);
  });

  it('warns at synth how much concurrency the stack reserves from the account quota', () => {
    Annotations.fromStack(base.stack).hasWarning(
      '*',
      Match.stringLikeRegexp('reserves 2 concurrent executions .* at least 102'),
    );
    Annotations.fromStack(variant.stack).hasWarning(
      '*',
      Match.stringLikeRegexp('reserves 6 concurrent executions \\(predict 4, rollback 2\\)'),
    );
  });

  it("gives every function, CDK's own included, a log group with retention", () => {
    for (const s of [base, variant]) {
      const groups = s.template.findResources('AWS::Logs::LogGroup');
      for (const [id, group] of Object.entries(groups)) {
        expect(props(group as Json).RetentionInDays, id).toBe(30);
      }
      for (const [id, fn] of resources(s, 'AWS::Lambda::Function')) {
        const logGroup = (props(fn).LoggingConfig as { LogGroup?: Json } | undefined)?.LogGroup;
        expect(Object.keys(groups), id).toContain(logGroup?.Ref);
      }
    }
  });
});

describe('functions', () => {
  it('are traced, log to their own group with retention, and run Node.js 22 on arm64 by default', () => {
    for (const [name, { fn }] of Object.entries(functions(base))) {
      const resource = base.template.findResources('AWS::Lambda::Function')[fn] as Json;
      expect(props(resource), name).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        Environment: {
          Variables: expect.objectContaining({
            MAAS_BUCKET: { Ref: logicalId(base.stack.modelBucket.bucket) },
            POWERTOOLS_METRICS_NAMESPACE: 'Maas',
          }),
        },
      });
      const logGroup = (props(resource).LoggingConfig as { LogGroup: Json }).LogGroup;
      const groupId = (logGroup.Ref as string | undefined) ?? '';
      expect(base.template.findResources('AWS::Logs::LogGroup')[groupId], name).toMatchObject({
        Properties: { RetentionInDays: 30 },
      });
    }
  });

  it('build for x86_64 when the architecture setting says so', () => {
    for (const { fn } of Object.values(functions(variant))) {
      const resource = variant.template.findResources('AWS::Lambda::Function')[fn] as Json;
      expect(props(resource).Architectures).toEqual(['x86_64']);
    }
  });

  it('pass predict the explain switch and cap from cdk.json', () => {
    const env = (s: Synthesized) =>
      (
        props(s.template.findResources('AWS::Lambda::Function')[functions(s).predict.fn] as Json)
          .Environment as Json
      ).Variables as Json;
    expect(env(base)).toMatchObject({ MAAS_EXPLAIN: 'on' });
    expect(env(base).MAAS_EXPLAIN_MAX_BUDGET).toBeUndefined();
    expect(env(variant)).toMatchObject({ MAAS_EXPLAIN: 'off', MAAS_EXPLAIN_MAX_BUDGET: '256' });
  });

  it('load source maps everywhere but in predict, whose cold start would pay for them', () => {
    for (const [name, { fn }] of Object.entries(functions(base))) {
      const resource = base.template.findResources('AWS::Lambda::Function')[fn] as Json;
      const variables = (props(resource).Environment as Json).Variables as Json;
      if (name === 'predict') expect(variables.NODE_OPTIONS, name).toBeUndefined();
      else expect(variables.NODE_OPTIONS, name).toMatch(/^--enable-source-maps( |$)/);
    }
  });

  it('pass ingest the canary weight and bake time', () => {
    const fn = base.template.findResources('AWS::Lambda::Function')[functions(base).ingest.fn];
    expect((props(fn as Json).Environment as Json).Variables as Json).toMatchObject({
      MAAS_CANARY_WEIGHT: '0.1',
      MAAS_BAKE_MINUTES: '30',
    });
  });
});

describe('least privilege', () => {
  it('lets predict read the registry only: GetObject on it and ListBucket, nothing else', () => {
    const { role } = functions(base).predict;
    expect(keyPatterns(base, role, S3_READ)).toEqual(['registry/*']);
    expect(keyPatterns(base, role, S3_WRITE)).toEqual([]);
    const s3Actions = statementsOf(base, role)
      .flatMap((st) => asList(st.Action))
      .filter((a) => a.startsWith('s3:'))
      .sort();
    expect(s3Actions).toEqual(['s3:GetObject', 's3:ListBucket']);
  });

  it('grants no S3 wildcard action to any function', () => {
    for (const { role } of Object.values(functions(base))) {
      const actions = statementsOf(base, role).flatMap((st) => asList(st.Action));
      expect(actions.filter((a) => a.startsWith('s3:') && a.includes('*'))).toEqual([]);
    }
  });

  it('lets ingest read uploads and the registry, and write the registry only, deleting nothing', () => {
    const { role } = functions(base).ingest;
    expect(keyPatterns(base, role, S3_READ)).toEqual(['incoming/*', 'registry/*']);
    expect(keyPatterns(base, role, S3_WRITE)).toEqual(['registry/*']);
    expect(keyPatterns(base, role, /^s3:Delete/)).toEqual([]);
  });

  it('lets rollback and promote write only aliases and history', () => {
    for (const name of ['rollback', 'promote'] as const) {
      const { role } = functions(base)[name];
      expect(keyPatterns(base, role, S3_READ), name).toEqual(['registry/*']);
      expect(keyPatterns(base, role, S3_WRITE), name).toEqual([
        'registry/*/aliases.json',
        'registry/*/history/*',
      ]);
    }
  });

  it('uses a `*` resource only for actions that accept nothing narrower', () => {
    for (const s of [base, variant]) {
      for (const [id, policy] of resources(s, 'AWS::IAM::Policy')) {
        const statements = (props(policy).PolicyDocument as { Statement: Statement[] }).Statement;
        for (const st of statements.filter((st) => asList(st.Resource).includes('*'))) {
          const broad = asList(st.Action).filter((action) => !RESOURCELESS_ACTIONS.has(action));
          expect(broad, `${id} grants ${broad.join(', ')} on *`).toEqual([]);
        }
      }
    }
  });

  it('lets rollback and promote read metrics and publish to the alerts topic only', () => {
    const topic = `<${logicalId(base.stack.guard.alerts)}>`;
    for (const name of ['rollback', 'promote'] as const) {
      const statements = statementsOf(base, functions(base)[name].role);
      const resourcesOf = (prefix: string) =>
        statements
          .filter((st) => asList(st.Action).some((a) => a.startsWith(prefix)))
          .flatMap((st) => asList(st.Resource).map(resourceText));
      expect(resourcesOf('sns:'), name).toEqual([topic]);
      expect(resourcesOf('cloudwatch:'), name).toEqual(['*']);
      expect(
        statements.flatMap((st) => asList(st.Action)).filter((a) => a.startsWith('cloudwatch:')),
        name,
      ).toEqual(['cloudwatch:GetMetricData']);
    }
    expect(
      statementsOf(base, functions(base).predict.role).flatMap((st) => asList(st.Action)),
    ).not.toContainEqual(expect.stringMatching(/^(sns|cloudwatch):/));
  });
});

describe('upload trigger', () => {
  it('fires ingest on ObjectCreated under incoming/ for .onnx keys only', () => {
    const [[, notifications] = ['', {}]] = resources(base, 'Custom::S3BucketNotifications');
    expect(props(notifications).NotificationConfiguration).toEqual({
      LambdaFunctionConfigurations: [
        {
          Events: ['s3:ObjectCreated:*'],
          Filter: {
            Key: {
              FilterRules: expect.arrayContaining([
                { Name: 'prefix', Value: 'incoming/' },
                { Name: 'suffix', Value: '.onnx' },
              ]),
            },
          },
          LambdaFunctionArn: { 'Fn::GetAtt': [functions(base).ingest.fn, 'Arn'] },
        },
      ],
    });
  });

  it("cannot fire on ingest's own writes, nor on any function's", () => {
    for (const { role } of Object.values(functions(base))) {
      for (const pattern of keyPatterns(base, role, S3_WRITE)) {
        expect(pattern.startsWith('registry/'), pattern).toBe(true);
        expect(pattern.startsWith('incoming/') || pattern.startsWith('*'), pattern).toBe(false);
      }
    }
  });

  it('retries a failed ingest, then parks the event in an encrypted, TLS-only queue', () => {
    const queue = logicalId(base.stack.ingest.failures.queue);
    base.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: functions(base).ingest.fn },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
    });
    base.template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    base.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queue }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });
});

describe('guard', () => {
  it('alarms per model version with a Metrics Insights query and invokes rollback per contributor', () => {
    const rollback = functions(base).rollback.fn;
    const alarms = resources(base, 'AWS::CloudWatch::Alarm').map(([, a]) => props(a));
    expect(alarms.map((a) => a.AlarmName).sort()).toEqual([
      'OnnxMaas-guard-latency',
      'OnnxMaas-guard-model-errors',
      'OnnxMaas-guard-slow',
    ]);
    for (const alarm of alarms) {
      const [query] = alarm.Metrics as { Expression: string; Period: number }[];
      expect(query?.Expression).toMatch(
        /^SELECT (AVG|MAX)\(\w+\) FROM SCHEMA\("Maas", Model, Version\) GROUP BY Model, Version /,
      );
      expect(alarm.AlarmActions).toEqual([{ 'Fn::GetAtt': [rollback, 'Arn'] }]);
      expect(alarm.TreatMissingData).toBe('notBreaching');
    }
    const errors = alarms.find((a) => a.AlarmName === 'OnnxMaas-guard-model-errors');
    expect(errors).toMatchObject({ Threshold: 0.05, EvaluationPeriods: 5, DatapointsToAlarm: 3 });
    // the slow rule's alarm is a trigger: it fires at its floor, rollback judges the rest
    const slow = alarms.find((a) => a.AlarmName === 'OnnxMaas-guard-slow');
    expect(slow).toMatchObject({ Threshold: 50 });
    base.template.resourcePropertiesCountIs(
      'AWS::Lambda::Permission',
      {
        Principal: 'lambda.alarms.cloudwatch.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [rollback, 'Arn'] },
      },
      DEFAULT_ALARM_DEFINITIONS.length,
    );
  });

  it('applies threshold overrides from maas:alarmThresholds', () => {
    variant.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'OnnxMaas-guard-latency',
      Threshold: 750,
    });
  });

  it('gives rollback and promote the thresholds the alarms were built with, and the alerts topic', () => {
    for (const s of [base, variant]) {
      for (const name of ['rollback', 'promote'] as const) {
        const fn = s.template.findResources('AWS::Lambda::Function')[functions(s)[name].fn] as Json;
        const env = (props(fn).Environment as { Variables: Json }).Variables;
        expect(env, name).toMatchObject({
          MAAS_GUARD_ALARM_PREFIX: 'OnnxMaas-guard-',
          MAAS_ALERT_TOPIC_ARN: { Ref: logicalId(s.stack.guard.alerts) },
        });
        expect(JSON.parse(String(env.MAAS_ALARM_THRESHOLDS))).toEqual(
          s === base ? {} : { latency: 750 },
        );
      }
    }
  });

  it('announces on an encrypted, TLS-only topic', () => {
    const topic = logicalId(base.stack.guard.alerts);
    base.template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: 'alias/aws/sns',
    });
    base.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topic }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('invokes promote on a schedule, with retries and a dead-letter queue', () => {
    base.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [functions(base).promote.fn, 'Arn'] },
          DeadLetterConfig: {
            Arn: { 'Fn::GetAtt': [logicalId(base.stack.guard.failures.queue), 'Arn'] },
          },
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
        }),
      ],
    });
  });
});

describe('dashboard and outputs', () => {
  it('charts every metric per model and variant and shows the guard alarms', () => {
    const [[, dashboard] = ['', {}]] = resources(base, 'AWS::CloudWatch::Dashboard');
    // The body is a JSON string joined around tokens (region, ARNs): stand them in to parse it.
    const [, parts] = (props(dashboard).DashboardBody as { 'Fn::Join': [string, unknown[]] })[
      'Fn::Join'
    ];
    const body = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('')) as {
      widgets: { type: string; properties: { metrics?: unknown[][]; alarms?: string[] } }[];
    };
    const expressions = body.widgets.flatMap((w) =>
      (w.properties.metrics ?? [])
        .flat()
        .flatMap((m) =>
          typeof m === 'object' && m !== null && 'expression' in m ? [String(m.expression)] : [],
        ),
    );
    for (const metric of [
      'Requests',
      'ModelErrors',
      'ClientErrors',
      'ColdStart',
      'ModelLoadLatency',
    ]) {
      expect(expressions).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^SELECT \\w+\\(${metric}\\) FROM SCHEMA\\("Maas", Model, Variant\\) GROUP BY Model, Variant `,
          ),
        ),
      );
    }
    expect(expressions).toContain(`SEARCH('{Maas,Model,Variant} MetricName="Latency"', 'p50', 60)`);
    expect(expressions).toContain(`SEARCH('{Maas,Model,Variant} MetricName="Latency"', 'p99', 60)`);
    const alarmWidget = body.widgets.find((w) => w.type === 'alarm');
    expect(alarmWidget?.properties.alarms).toHaveLength(base.stack.guard.alarms.length);
  });

  it('exports the outputs maas --stack reads, under stable names', () => {
    expect(Object.keys(base.template.toJSON().Outputs).sort()).toEqual(
      [...Object.values(STACK_OUTPUTS), ALERT_TOPIC_OUTPUT].sort(),
    );
  });
});

describe('cdk-nag', () => {
  it('reports no unacknowledged AwsSolutions or Serverless finding, in either configuration', () => {
    for (const s of [base, variant]) {
      for (const pack of [new AwsSolutionsChecks(s.app), new ServerlessChecks(s.app)]) {
        const findings = pack
          .validateScope(s.app)
          .violations.flatMap((v) =>
            v.violatingResources.map((r) => `${v.ruleName} at ${r.resourceLogicalId}`),
          );
        expect(findings, pack.name).toEqual([]);
      }
    }
  });

  it('acknowledges findings only on single resources, each with a specific reason', () => {
    const acknowledged = base.app.node
      .findAll()
      .flatMap((c) =>
        c.node.metadata
          .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
          .map((m) => ({ construct: c, rules: m.data as Record<string, string> })),
      );
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const { construct, rules } of acknowledged) {
      expect(construct, construct.node.path).not.toBeInstanceOf(Stack);
      for (const [rule, reason] of Object.entries(rules)) {
        expect(String(reason).length, `${construct.node.path} ${rule}`).toBeGreaterThan(40);
      }
    }
  });
});
