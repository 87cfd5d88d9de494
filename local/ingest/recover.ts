import type { S3EventRecord } from 'aws-lambda';
import { describeUpload, endLease } from '../../src/ingest/index.ts';
import { INCOMING_PREFIX, parseIncomingKey, type Registry } from '../../src/registry/index.ts';
import { ObjectNotFoundError } from '../../src/storage/index.ts';
import { objectCreatedRecord } from '../s3/events.ts';

export interface RecoveredUpload {
  key: string;
  /** the claim a dead process left running, whose lease was ended so the delivery takes over */
  tookOver: boolean;
}

/**
 * On AWS, an upload whose ingest died is delivered again by Lambda's retries (and its claim's
 * lease lapses in the meantime). A local stack that was killed has no one left to retry: on
 * start, every `incoming/` model with no recorded outcome is delivered again, and the claims the
 * dead process held are released at once, since it cannot be holding them any more. Ingest's
 * idempotency makes the rest safe: a delivery whose outcome exists changes nothing.
 */
export async function redeliverPending(
  registry: Registry,
  deliver: (record: S3EventRecord) => void,
  now: Date = new Date(),
): Promise<RecoveredUpload[]> {
  const { store } = registry;
  const { keys: listed } = await store.list(INCOMING_PREFIX);
  const recovered: RecoveredUpload[] = [];
  for (const head of listed) {
    const parsed = parseIncomingKey(head.key);
    if (parsed?.kind !== 'model') continue;
    let upload: Awaited<ReturnType<typeof describeUpload>>;
    try {
      upload = await describeUpload(store, head.key);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) continue;
      throw err;
    }
    if ((await registry.findUploadOutcome(parsed.model, upload)) !== undefined) continue;
    const tookOver = await endLease(store, parsed.model, upload, now);
    deliver(
      objectCreatedRecord({
        bucket: store.bucket,
        key: head.key,
        size: head.size,
        eTag: upload.etag,
        eventName: 'ObjectCreated:Put',
        sourceIp: '127.0.0.1',
      }),
    );
    recovered.push({ key: head.key, tookOver });
  }
  return recovered;
}
