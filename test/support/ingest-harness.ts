import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Event, S3EventRecord } from 'aws-lambda';
import { createHandler } from '../../functions/ingest/handler.ts';
import {
  describeUpload,
  INGEST_DEFAULTS,
  type IngestDeps,
  type IngestResult,
  type IngestSettings,
} from '../../src/ingest/index.ts';
import { type HistoryRecord, keys, Registry, type UploadRef } from '../../src/registry/index.ts';
import { normalizeEtag } from '../../src/storage/index.ts';
import { startTestS3, type TestS3 } from './local-s3.ts';

export interface Harness {
  s3: TestS3;
  registry: Registry;
  /** every record the local S3 delivered, as the handler got it */
  records: S3EventRecord[];
  results: IngestResult[];
  errors: unknown[];
  /** PUTs samples (when given) then the model under incoming/<model>/<file> */
  upload(
    model: string,
    file: string,
    bytes: Uint8Array,
    options?: { metadata?: Record<string, string>; samples?: unknown[] | string },
  ): Promise<UploadRef>;
  /** the registered/rejected record of an upload, once ingest has written it */
  outcome(model: string, upload: UploadRef): Promise<HistoryRecord>;
  /** runs the handler on an event, as a redelivery would */
  deliver(records: S3EventRecord[]): Promise<IngestResult[]>;
  /** waits until every delivered event has been handled */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  settings?: Partial<IngestSettings>;
  /** deps by model, over the defaults (lowered validation caps for one case, say) */
  depsFor?: (model: string) => Partial<IngestDeps>;
  /** false: events are only recorded, and run when the test calls `deliver`. @default true */
  autoDeliver?: boolean;
}

/**
 * A fresh local S3 whose ObjectCreated events run the real ingest Lambda handler in this process,
 * exactly as the local stack and AWS deliver them: one event per record, keys URL-encoded.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const s3 = await startTestS3();
  const registry = new Registry(s3.store);
  const settings: IngestSettings = {
    ...INGEST_DEFAULTS,
    intraOpThreads: 1,
    ...options.settings,
  };
  const depsOf = (model: string): IngestDeps => ({
    registry,
    settings,
    ...options.depsFor?.(model),
  });
  const records: S3EventRecord[] = [];
  const results: IngestResult[] = [];
  const errors: unknown[] = [];
  const pending = new Set<Promise<unknown>>();

  const deliver = async (batch: S3EventRecord[]): Promise<IngestResult[]> => {
    const model = decodeURIComponent(batch[0]?.s3.object.key ?? '').split('/')[1] ?? '';
    const handler = createHandler(() => depsOf(model));
    const event: S3Event = { Records: batch };
    return handler(event, { getRemainingTimeInMillis: () => 120_000 });
  };
  s3.s3.onObjectCreated((record) => {
    records.push(record);
    if (options.autoDeliver === false) return;
    const run = deliver([record]).then(
      (out) => {
        results.push(...out);
      },
      (err: unknown) => {
        errors.push(err);
      },
    );
    pending.add(run);
    void run.finally(() => pending.delete(run));
  });

  return {
    s3,
    registry,
    records,
    results,
    errors,
    async upload(model, file, bytes, opts = {}) {
      const key = keys.incomingModel(model, file);
      if (opts.samples !== undefined) {
        const body = typeof opts.samples === 'string' ? opts.samples : JSON.stringify(opts.samples);
        await s3.store.put(keys.samplesFor(key), body, { contentType: 'application/json' });
      }
      const put = await s3.client.send(
        new PutObjectCommand({
          Bucket: s3.s3.bucket,
          Key: key,
          Body: bytes,
          ...(opts.metadata === undefined ? {} : { Metadata: opts.metadata }),
        }),
      );
      // the identity ingest claims it under: bytes, samples and options
      const upload = await describeUpload(s3.store, key);
      if (upload.etag !== normalizeEtag(put.ETag ?? ''))
        throw new Error(`${key} changed under the test`);
      return upload;
    },
    async outcome(model, upload) {
      const deadline = Date.now() + 90_000;
      for (;;) {
        const found = await registry.findUploadOutcome(model, upload);
        if (found !== undefined) return found;
        if (errors.length > 0) throw errors[0];
        if (Date.now() > deadline) throw new Error(`no outcome for ${upload.sourceKey}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    deliver,
    async settled() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    async close() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
      await s3.cleanup();
    },
  };
}

/** Every key stored under `registry/<model>/`, relative to it. */
export async function registryKeys(harness: Harness, model: string): Promise<string[]> {
  const prefix = keys.modelPrefix(model);
  const { keys: listed } = await harness.s3.store.list(prefix);
  return listed.map((head) => head.key.slice(prefix.length));
}
