import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../../src/registry/index.ts';
import { type Synthesized, synthesize } from '../../infra/synth.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';

/**
 * The local S3 must refuse exactly the writes the deployed bucket policy denies. This evaluates
 * the synthesized policy's Deny statements (the condition operators it uses, no more) for each
 * request of a matrix, and sends the same request to the local S3.
 */
type Json = Record<string, unknown>;
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

interface Request {
  operation: 'PutObject' | 'CompleteMultipartUpload';
  key: string;
  ifNoneMatch?: '*';
  ifMatch?: 'current' | 'stale';
}

let stack: Synthesized;
let s3: TestS3;
let statements: Statement[];
let bucketId: string;
let writerArn: string;

beforeAll(async () => {
  stack = synthesize();
  s3 = await startTestS3();
  const bucket = stack.stack.modelBucket.bucket;
  bucketId = Stack.of(bucket).getLogicalId(bucket.node.defaultChild as CfnElement);
  const [policy] = Object.values(
    stack.template.findResources('AWS::S3::BucketPolicy', {
      Properties: { Bucket: { Ref: bucketId } },
    }),
  ) as Json[];
  if (policy === undefined) throw new Error('the model bucket has no bucket policy');
  statements = ((policy.Properties as Json).PolicyDocument as { Statement: Statement[] }).Statement;
  const role = stack.stack.ingest.handler.role;
  writerArn = JSON.stringify({
    'Fn::GetAtt': [Stack.of(role).getLogicalId(role.node.defaultChild as CfnElement), 'Arn'],
  });
});
afterAll(async () => {
  stack?.dispose();
  await s3?.cleanup();
});

const asList = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** `arn:…:<bucket>/registry/*` as a key pattern, `undefined` for other resources. */
const keyPattern = (resource: unknown): RegExp | undefined => {
  const join = (resource as Json)['Fn::Join'] as [string, unknown[]] | undefined;
  if (join === undefined) return undefined;
  const [first, ...rest] = join[1];
  if (JSON.stringify(first) !== JSON.stringify({ 'Fn::GetAtt': [bucketId, 'Arn'] }))
    return undefined;
  const pattern = rest.join('').replace(/^\//, '');
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
};

const conditionHolds = (operator: string, values: Record<string, unknown>, req: Request): boolean =>
  Object.entries(values).every(([name, expected]) => {
    if (operator === 'Null') {
      const absent =
        name === 's3:if-none-match'
          ? req.ifNoneMatch === undefined
          : name === 's3:if-match'
            ? req.ifMatch === undefined
            : true;
      return String(absent) === expected;
    }
    if (operator === 'Bool' && name === 's3:ObjectCreationOperation') return expected === 'true';
    if (operator === 'ArnNotEquals' && name === 'aws:PrincipalArn') {
      return !asList(expected).some((arn) => JSON.stringify(arn) === writerArn);
    }
    if (operator === 'Bool' && name === 'aws:SecureTransport') return expected === 'true';
    if (operator === 'NumericLessThan' && name === 's3:TlsVersion') return false;
    throw new Error(`the policy uses ${operator} ${name}: teach this evaluator, and the local S3`);
  });

/** Whether the bucket policy denies the request of the platform's writer (ingest's role). */
const policyDenies = (req: Request): boolean =>
  statements.some(
    (st) =>
      st.Effect === 'Deny' &&
      asList(st.Action).some((a) => a === 's3:PutObject' || a === 's3:*') &&
      asList(st.Resource).some((r) => keyPattern(r)?.test(req.key) ?? false) &&
      Object.entries(st.Condition ?? {}).every(([op, values]) => conditionHolds(op, values, req)),
  );

const send = async (req: Request): Promise<number> => {
  let etag: string | undefined;
  try {
    etag = (await s3.store.head(req.key)).etag;
  } catch {
    etag = undefined;
  }
  const conditions = {
    ...(req.ifNoneMatch === undefined ? {} : { IfNoneMatch: req.ifNoneMatch }),
    ...(req.ifMatch === undefined
      ? {}
      : { IfMatch: req.ifMatch === 'current' && etag !== undefined ? etag : '"0123456789abcdef"' }),
  };
  const target = { Bucket: s3.s3.bucket, Key: req.key };
  try {
    if (req.operation === 'PutObject') {
      await s3.client.send(new PutObjectCommand({ ...target, Body: 'body', ...conditions }));
    } else {
      // the parts carry no condition: AWS exempts them, the local S3 must too
      const { UploadId } = await s3.client.send(new CreateMultipartUploadCommand(target));
      const { ETag } = await s3.client.send(
        new UploadPartCommand({ ...target, UploadId, PartNumber: 1, Body: 'part' }),
      );
      await s3.client.send(
        new CompleteMultipartUploadCommand({
          ...target,
          UploadId,
          MultipartUpload: { Parts: [{ ETag, PartNumber: 1 }] },
          ...conditions,
        }),
      );
    }
    return 200;
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
};

const KEYS = [
  keys.variant('m', 1, 'fp32'),
  keys.variant('m', 1, 'int8'),
  keys.manifest('m', 1),
  keys.reservation('m', 1),
  `${keys.historyPrefix('m')}000000000000001-a.json`,
  keys.aliases('m'),
  `${keys.modelPrefix('m')}uploads/claim.json`,
  'incoming/m/model.onnx',
];
const HEADERS: Pick<Request, 'ifNoneMatch' | 'ifMatch'>[] = [
  {},
  { ifNoneMatch: '*' },
  { ifMatch: 'current' },
  { ifMatch: 'stale' },
];

describe.each(['PutObject', 'CompleteMultipartUpload'] as const)('%s', (operation) => {
  it.each(KEYS)(
    'to %s is refused locally exactly when the bucket policy denies it',
    async (key) => {
      // once while the key is absent, once over the object now stored
      await s3.store.delete(key);
      await s3.store.put(key, 'first', key.startsWith('incoming/') ? {} : { ifNoneMatch: '*' });
      const outcomes: string[] = [];
      for (const headers of HEADERS) {
        const req: Request = { operation, key, ...headers };
        const denied = policyDenies(req);
        const status = await send(req);
        outcomes.push(`${JSON.stringify(headers)} → ${status}`);
        if (denied) expect(status, JSON.stringify(req)).toBe(403);
        else expect(status, JSON.stringify(req)).not.toBe(403);
      }
      // what the matrix proves, readably: no unconditional write under registry/, no overwrite of a
      // version's objects or history
      const unconditional = outcomes[0] ?? '';
      expect(unconditional.endsWith('403')).toBe(key.startsWith('registry/'));
    },
  );
});

it('refuses an unconditional overwrite of a version object and of aliases.json, as AWS does', async () => {
  for (const key of [keys.variant('iris', 1, 'fp32'), keys.aliases('iris')]) {
    await s3.store.put(key, 'registered', { ifNoneMatch: '*' });
    expect(policyDenies({ operation: 'PutObject', key })).toBe(true);
    expect(await send({ operation: 'PutObject', key })).toBe(403);
    expect(new TextDecoder().decode((await s3.store.get(key))?.body)).toBe('registered');
  }
  // aliases.json is replaced with If-Match; a version object never is
  expect(
    await send({ operation: 'PutObject', key: keys.aliases('iris'), ifMatch: 'current' }),
  ).toBe(200);
  expect(
    await send({
      operation: 'PutObject',
      key: keys.variant('iris', 1, 'fp32'),
      ifMatch: 'current',
    }),
  ).toBe(403);
});
