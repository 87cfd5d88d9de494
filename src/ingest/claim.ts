import { createHash } from 'node:crypto';
import { MaasError } from '../errors/index.ts';
import { keys, type UploadRef } from '../registry/index.ts';
import {
  ObjectNotFoundError,
  type ObjectStore,
  PreconditionFailedError,
} from '../storage/index.ts';
import type { AliasPolicy } from './aliases.ts';

/**
 * One object per upload (key + ETag), created with `If-None-Match: *` by the first invocation that
 * sees the upload and moved along with `If-Match`. It makes ingest idempotent under S3's
 * at-least-once delivery: a redelivered event finds the claim `done` and changes nothing; a
 * duplicate delivered while the first still runs finds it `running`; a retry after a transient
 * failure finds it `released` and resumes, reusing the version it had reserved.
 */
export interface Claim {
  sourceKey: string;
  etag: string;
  state: 'running' | 'released' | 'done';
  attempt: number;
  startedAt: string;
  /** the deadline of the invocation running it: past this, that invocation is dead */
  expiresAt: string;
  /** the version reserved for this upload, once reserved, and where it is to be placed */
  version?: number;
  policy?: AliasPolicy;
  outcome?: { event: 'registered' | 'rejected'; version?: number; code?: string };
}

export const claimKey = (model: string, upload: UploadRef): string =>
  `${keys.modelPrefix(model)}uploads/${createHash('sha256').update(`${upload.sourceKey}\n${upload.etag}`).digest('hex')}.json`;

/** Another invocation took the claim over: this one must stop writing. */
export class ClaimLostError extends MaasError {
  constructor(key: string) {
    super('ClaimLost', `the ingest claim ${key} was taken over by another invocation`, {
      details: { key },
    });
  }
}

export type ClaimResult =
  | { kind: 'acquired'; handle: ClaimHandle }
  /** a previous invocation died while running it (timeout, out of memory): the caller decides */
  | { kind: 'expired'; handle: ClaimHandle; previous: Claim }
  | { kind: 'done'; claim: Claim }
  | { kind: 'busy'; claim: Claim };

export class ClaimHandle {
  constructor(
    private readonly store: ObjectStore,
    readonly key: string,
    private current: Claim,
    private etag: string,
  ) {}

  get claim(): Claim {
    return this.current;
  }

  async update(patch: Partial<Claim>): Promise<void> {
    const next = { ...this.current, ...patch };
    try {
      const { etag } = await this.store.put(this.key, JSON.stringify(next), {
        ifMatch: this.etag,
        contentType: 'application/json',
      });
      this.current = next;
      this.etag = etag;
    } catch (err) {
      if (err instanceof PreconditionFailedError) throw new ClaimLostError(this.key);
      throw err;
    }
  }
}

const parse = (body: Uint8Array): Claim => JSON.parse(new TextDecoder().decode(body)) as Claim;

/**
 * Takes the claim of an upload for this invocation, which may run until `deadline`. Every step is
 * a conditional write, so of any number of concurrent deliveries exactly one proceeds.
 */
export const acquireClaim = async (
  store: ObjectStore,
  model: string,
  upload: UploadRef,
  now: Date,
  deadline: Date,
): Promise<ClaimResult> => {
  const key = claimKey(model, upload);
  const fresh = (attempt: number, previous?: Claim): Claim => ({
    sourceKey: upload.sourceKey,
    etag: upload.etag,
    state: 'running',
    attempt,
    startedAt: now.toISOString(),
    expiresAt: deadline.toISOString(),
    ...(previous?.version === undefined ? {} : { version: previous.version }),
    ...(previous?.policy === undefined ? {} : { policy: previous.policy }),
  });
  for (;;) {
    const first = fresh(1);
    try {
      const { etag } = await store.put(key, JSON.stringify(first), {
        ifNoneMatch: '*',
        contentType: 'application/json',
      });
      return { kind: 'acquired', handle: new ClaimHandle(store, key, first, etag) };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    let stored: { claim: Claim; etag: string };
    try {
      const object = await store.get(key);
      if (object === undefined) continue;
      stored = { claim: parse(object.body), etag: object.etag };
    } catch (err) {
      if (err instanceof ObjectNotFoundError) continue;
      throw err;
    }
    const { claim } = stored;
    if (claim.state === 'done') return { kind: 'done', claim };
    const expired = Date.parse(claim.expiresAt) <= now.getTime();
    if (claim.state === 'running' && !expired) return { kind: 'busy', claim };
    const next = fresh(claim.attempt + 1, claim);
    try {
      const { etag } = await store.put(key, JSON.stringify(next), {
        ifMatch: stored.etag,
        contentType: 'application/json',
      });
      const handle = new ClaimHandle(store, key, next, etag);
      return claim.state === 'running'
        ? { kind: 'expired', handle, previous: claim }
        : { kind: 'acquired', handle };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
};
