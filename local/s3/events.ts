import { createHash, randomBytes } from 'node:crypto';
import type { S3EventRecord } from 'aws-lambda';

/**
 * Encodes a key the way S3 event notifications do (form encoding: a space becomes `+`, `/` stays),
 * so `decodeURIComponent(key.replace(/\+/g, ' '))` in the ingest adapter works alike here and on AWS.
 */
export function encodeEventKey(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/%20/g, '+'))
    .join('/');
}

export interface CreatedObject {
  bucket: string;
  key: string;
  size: number;
  /** bare ETag, no quotes, as AWS puts it in event records */
  eTag: string;
  eventName: string;
  sourceIp: string;
}

let sequence = 0;

/** An ObjectCreated record with every field AWS fills, built from what the local S3 stored. */
export function objectCreatedRecord(created: CreatedObject, now = new Date()): S3EventRecord {
  sequence = (sequence + 1) % 0x10000;
  const sequencer =
    now.getTime().toString(16).toUpperCase().padStart(12, '0') +
    sequence.toString(16).toUpperCase().padStart(4, '0');
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-east-1',
    eventTime: now.toISOString(),
    eventName: created.eventName,
    userIdentity: { principalId: 'AWS:S3RVER' },
    requestParameters: { sourceIPAddress: created.sourceIp },
    responseElements: {
      'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase(),
      'x-amz-id-2': createHash('sha256').update(sequencer).digest('base64'),
    },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'maas-local',
      bucket: {
        name: created.bucket,
        ownerIdentity: { principalId: 'S3RVER' },
        arn: `arn:aws:s3:::${created.bucket}`,
      },
      object: {
        key: encodeEventKey(created.key),
        size: created.size,
        eTag: created.eTag,
        sequencer,
      },
    },
  };
}
