import { createHash } from 'node:crypto';
import { keys, type UploadRef } from '../registry/index.ts';
import { normalizeEtag, ObjectNotFoundError, type ObjectStore } from '../storage/index.ts';
import { parseUploadOptions } from './options.ts';

/**
 * What an upload's outcome depends on besides the model bytes (key + ETag): the samples sidecar
 * beside it and the options in its metadata. Pushing the same file again with samples, or with
 * `--no-quantize`, is a new upload to evaluate; pushing it again unchanged is the same upload,
 * whose outcome is already recorded.
 */
export function uploadInputs(
  metadata: Readonly<Record<string, string>>,
  samplesEtag: string | undefined,
): string {
  let options: string;
  try {
    const parsed = parseUploadOptions(metadata);
    options = `quantize=${parsed.quantize ? 'on' : 'off'};promote=${parsed.promote};weight=${parsed.canaryWeight ?? ''}`;
    // appended only when given, so uploads without them keep the identity they always had
    if (parsed.accuracy !== undefined) {
      options += `;accuracy=${parsed.accuracy.metric}:${parsed.accuracy.min ?? ''}`;
    }
    if (parsed.maxElements !== undefined) options += `;max-elements=${parsed.maxElements}`;
  } catch {
    // Invalid options end in a rejection; the raw values still tell one such upload from another.
    options = `invalid:${JSON.stringify(Object.entries(metadata).sort())}`;
  }
  return createHash('sha256')
    .update(`samples=${samplesEtag ?? ''}\n${options}`)
    .digest('hex')
    .slice(0, 32);
}

/**
 * The identity of the upload now stored at `sourceKey` (its ETag, samples and options), read with
 * two HEADs; ObjectNotFoundError when the model object is gone.
 */
export async function describeUpload(store: ObjectStore, sourceKey: string): Promise<UploadRef> {
  const head = await store.head(sourceKey);
  let samplesEtag: string | undefined;
  try {
    samplesEtag = normalizeEtag((await store.head(keys.samplesFor(sourceKey))).etag);
  } catch (err) {
    if (!(err instanceof ObjectNotFoundError)) throw err;
  }
  return {
    sourceKey,
    etag: normalizeEtag(head.etag),
    inputs: uploadInputs(head.metadata, samplesEtag),
  };
}
