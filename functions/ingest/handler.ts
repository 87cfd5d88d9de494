import { Logger } from '@aws-lambda-powertools/logger';
import type { Context, S3Event } from 'aws-lambda';
import {
  createIngestDepsFromEnv,
  type IngestDeps,
  type IngestResult,
  ingestUpload,
} from '../../src/ingest/index.ts';

const logger = new Logger({ serviceName: 'maas-ingest' });

/** S3 event records carry keys form-encoded (a space is `+`); the core takes them decoded. */
export const decodeEventKey = (key: string): string => decodeURIComponent(key.replace(/\+/g, ' '));

/**
 * The S3 ObjectCreated adapter: each record of the event, in order, through the ingest core.
 * A thrown error (storage unreachable, the same upload busy elsewhere) fails the invocation, and
 * Lambda's asynchronous retries deliver the event again; uploads already settled are skipped.
 */
export const createHandler =
  (deps: () => IngestDeps) =>
  async (event: S3Event, context?: Pick<Context, 'getRemainingTimeInMillis'>) => {
    const ingest = deps();
    const results: IngestResult[] = [];
    const deadline =
      context === undefined ? undefined : new Date(Date.now() + context.getRemainingTimeInMillis());
    for (const record of event.Records) {
      if (record.s3.bucket.name !== ingest.registry.store.bucket) {
        logger.warn('ingest: record for another bucket ignored', { bucket: record.s3.bucket.name });
        continue;
      }
      const bucketKey = decodeEventKey(record.s3.object.key);
      logger.appendKeys({ key: bucketKey });
      results.push(
        await ingestUpload(
          {
            bucketKey,
            etag: record.s3.object.eTag,
            ...(deadline === undefined ? {} : { deadline }),
          },
          ingest,
        ),
      );
      logger.removeKeys(['key']);
    }
    return results;
  };

let deps: IngestDeps | undefined;

export const handler = createHandler(() => {
  deps ??= createIngestDepsFromEnv({ logger });
  return deps;
});
