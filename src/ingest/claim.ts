import { createHash, randomUUID } from 'node:crypto';
import { MaasError } from '../errors/index.ts';
import { nestsTooDeep } from '../json/index.ts';
import { type AliasPolicy, CorruptRecordError, keys, type UploadRef } from '../registry/index.ts';
import {
  ObjectNotFoundError,
  type ObjectStore,
  PreconditionFailedError,
} from '../storage/index.ts';

/**
 * One object per upload (key + ETag), created with `If-None-Match: *` by the first invocation that
 * sees the upload and moved along with `If-Match`. It makes ingest idempotent under S3's
 * at-least-once delivery: a redelivered event finds the claim `done` and changes nothing; a
 * duplicate delivered while the first still runs finds it `running`; a retry after a transient
 * failure finds it `released` and resumes, reusing the version it had reserved.
 *
 * A holder cannot always release its claim: the outage that made it fail may also stop that
 * write, and an invocation killed for memory writes nothing. Lambda redelivers a failed
 * asynchronous event at most twice, about one minute and then two minutes later, and never while
 * the failed attempt still runs. A claim left `running` until its holder's deadline (up to
 * 15 minutes) would turn both redeliveries away and leave the upload with no outcome. So a
 * `running` claim is held by a lease, not by the deadline:
 * - `leaseUntil` is at most `LEASE_MS` ahead, renewed every `HEARTBEAT_MS` while the holder runs;
 *   `LEASE_MS` is under Lambda's first retry delay, so a holder that died has lost its lease by
 *   the time its event comes back. (onnxruntime and the quantizer block the event loop, so a live
 *   holder can miss beats during a long synchronous step; a duplicate delivery that takes over
 *   then is fenced: the holder's next claim write fails with `ClaimLostError`, and the manifest,
 *   the commit point, is created with `If-None-Match`.)
 * - `owner` names the execution environment (one process, one invocation at a time, as Lambda
 *   runs them). A delivery in the same environment that finds the claim `running` under its own
 *   name, with no invocation of it still active, knows the holder has returned: it takes over at
 *   once, without waiting for the lease.
 * - a lease that reached the holder's deadline means it ran out of time: the next delivery
 *   rejects the upload (`expired`) rather than run it into the same wall again.
 */
export interface Claim {
  sourceKey: string;
  etag: string;
  inputs?: string;
  state: 'running' | 'released' | 'done';
  attempt: number;
  startedAt: string;
  /** the deadline of the invocation running it: past this, that invocation is dead */
  expiresAt: string;
  /** while `running`: the holder is alive until then unless it renews it (absent: `expiresAt`) */
  leaseUntil?: string;
  /** the execution environment of the holder */
  owner?: string;
  /** the version reserved for this upload, once reserved, and where it is to be placed */
  version?: number;
  policy?: AliasPolicy;
  outcome?: { event: 'registered' | 'rejected'; version?: number; code?: string };
}

/** One claim per upload: key, bytes and what else decides the outcome (`UploadRef.inputs`). */
export const claimKey = (model: string, upload: UploadRef): string => {
  const identity = `${upload.sourceKey}\n${upload.etag}${upload.inputs === undefined ? '' : `\n${upload.inputs}`}`;
  return `${keys.modelPrefix(model)}uploads/${createHash('sha256').update(identity).digest('hex')}.json`;
};

/** Another invocation took the claim over: this one must stop writing. */
export class ClaimLostError extends MaasError {
  constructor(key: string) {
    super('ClaimLost', `the ingest claim ${key} was taken over by another invocation`, {
      details: { key },
    });
  }
}

/** how long a `running` claim stays held without a heartbeat: under Lambda's 1-minute retry delay */
export const LEASE_MS = 40_000;
/** how often a holder renews its lease: a few beats fit in one lease */
export const HEARTBEAT_MS = 10_000;

/** this execution environment (a Lambda instance, a local ingest process) */
export const INSTANCE_ID = randomUUID();

/** `owner\nclaim key` of the claims invocations of this process hold right now */
const active = new Set<string>();
const activeKey = (owner: string, key: string) => `${owner}\n${key}`;

export type ClaimResult =
  | { kind: 'acquired'; handle: ClaimHandle }
  /** a previous invocation ran until its deadline without finishing: the caller decides */
  | { kind: 'expired'; handle: ClaimHandle; previous: Claim }
  /**
   * a previous invocation stopped early without closing the claim: `returned` when this
   * environment saw it return (it failed on storage it could not reach), else its lease lapsed
   * (it crashed, ran out of memory, or lost the store)
   */
  | { kind: 'abandoned'; handle: ClaimHandle; previous: Claim; returned: boolean }
  | { kind: 'done'; claim: Claim }
  | { kind: 'busy'; claim: Claim; until: string };

export class ClaimHandle {
  private queue: Promise<void> = Promise.resolve();
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly store: ObjectStore,
    readonly key: string,
    private current: Claim,
    private etag: string,
    private readonly owner: string,
    private readonly deadline: Date,
  ) {}

  get claim(): Claim {
    return this.current;
  }

  /** Writes are queued, so a heartbeat never races a state change on the same ETag. */
  update(patch: Partial<Claim>): Promise<void> {
    const run = this.queue.then(() => this.write(patch));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(patch: Partial<Claim>): Promise<void> {
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

  /** Renews the lease every `HEARTBEAT_MS` until `close`; a failed beat goes to `onError`. */
  startHeartbeat(clock: () => Date, onError: (err: unknown) => void): void {
    if (this.closed || this.heartbeat !== undefined) return;
    this.heartbeat = setInterval(() => {
      if (this.current.state !== 'running') return;
      this.update({ leaseUntil: leaseEnd(clock(), this.deadline) }).catch((err: unknown) => {
        if (err instanceof ClaimLostError) this.stopHeartbeat();
        onError(err);
      });
    }, HEARTBEAT_MS);
    // A pending beat must not keep a local process alive, nor delay a Lambda's freeze.
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** The invocation is over (whatever state the claim was left in): no more beats. */
  close(): void {
    this.closed = true;
    this.stopHeartbeat();
    active.delete(activeKey(this.owner, this.key));
  }
}

const leaseEnd = (now: Date, deadline: Date): string =>
  new Date(Math.min(now.getTime() + LEASE_MS, deadline.getTime())).toISOString();

/** a claim that is not one (deep, cyclic) reads as corrupt: `Date.parse` of a deep array overflows */
const parse = (key: string, body: Uint8Array): Claim => {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(body));
  } catch (err) {
    throw new CorruptRecordError(key, err);
  }
  if (typeof value !== 'object' || value === null || nestsTooDeep(value)) {
    throw new CorruptRecordError(key, new TypeError('not a claim object of plain fields'));
  }
  return value as Claim;
};

/**
 * Takes the claim of an upload for this invocation, which may run until `deadline`, in the
 * execution environment `owner`. Every step is a conditional write, so of any number of
 * concurrent deliveries exactly one proceeds. The handle it returns must be closed.
 */
export const acquireClaim = async (
  store: ObjectStore,
  model: string,
  upload: UploadRef,
  now: Date,
  deadline: Date,
  owner: string = INSTANCE_ID,
): Promise<ClaimResult> => {
  const key = claimKey(model, upload);
  const mine = activeKey(owner, key);
  const fresh = (attempt: number, previous?: Claim): Claim => ({
    sourceKey: upload.sourceKey,
    etag: upload.etag,
    ...(upload.inputs === undefined ? {} : { inputs: upload.inputs }),
    state: 'running',
    attempt,
    startedAt: now.toISOString(),
    expiresAt: deadline.toISOString(),
    leaseUntil: leaseEnd(now, deadline),
    owner,
    ...(previous?.version === undefined ? {} : { version: previous.version }),
    ...(previous?.policy === undefined ? {} : { policy: previous.policy }),
  });
  /**
   * Marked active before the write that names this environment, so another invocation here
   * never reads that claim as left behind.
   */
  const write = async (claim: Claim, condition: { ifNoneMatch: '*' } | { ifMatch: string }) => {
    const wasActive = active.has(mine);
    active.add(mine);
    try {
      const { etag } = await store.put(key, JSON.stringify(claim), {
        ...condition,
        contentType: 'application/json',
      });
      return new ClaimHandle(store, key, claim, etag, owner, deadline);
    } catch (err) {
      if (!wasActive) active.delete(mine);
      if (err instanceof PreconditionFailedError) return undefined;
      throw err;
    }
  };
  for (;;) {
    const created = await write(fresh(1), { ifNoneMatch: '*' });
    if (created !== undefined) return { kind: 'acquired', handle: created };
    let stored: { claim: Claim; etag: string };
    try {
      const object = await store.get(key);
      if (object === undefined) continue;
      stored = { claim: parse(key, object.body), etag: object.etag };
    } catch (err) {
      if (err instanceof ObjectNotFoundError) continue;
      throw err;
    }
    const { claim } = stored;
    if (claim.state === 'done') return { kind: 'done', claim };
    const leaseUntil = claim.leaseUntil ?? claim.expiresAt;
    const returned = claim.state === 'running' && claim.owner === owner && !active.has(mine);
    if (claim.state === 'running' && !returned && Date.parse(leaseUntil) > now.getTime()) {
      return { kind: 'busy', claim, until: leaseUntil };
    }
    const handle = await write(fresh(claim.attempt + 1, claim), { ifMatch: stored.etag });
    if (handle === undefined) continue;
    if (claim.state !== 'running') return { kind: 'acquired', handle };
    const ranOutOfTime = !returned && Date.parse(leaseUntil) >= Date.parse(claim.expiresAt);
    return ranOutOfTime
      ? { kind: 'expired', handle, previous: claim }
      : { kind: 'abandoned', handle, previous: claim, returned };
  }
};

/**
 * Ends the lease of an upload's `running` claim now, for a caller that knows its holder is dead
 * (the local stack at start: the process that held it is gone). The next delivery takes over at
 * once, as it would once the lease lapsed; a `done`, `released` or lapsed claim is left as it is.
 * Returns whether a lease was ended.
 */
export const endLease = async (
  store: ObjectStore,
  model: string,
  upload: UploadRef,
  now: Date,
): Promise<boolean> => {
  const key = claimKey(model, upload);
  let stored: { claim: Claim; etag: string } | undefined;
  try {
    const object = await store.get(key);
    if (object !== undefined) stored = { claim: parse(key, object.body), etag: object.etag };
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return false;
    throw err;
  }
  if (stored === undefined || stored.claim.state !== 'running') return false;
  const leaseUntil = stored.claim.leaseUntil ?? stored.claim.expiresAt;
  if (Date.parse(leaseUntil) <= now.getTime()) return false;
  try {
    await store.put(key, JSON.stringify({ ...stored.claim, leaseUntil: now.toISOString() }), {
      ifMatch: stored.etag,
      contentType: 'application/json',
    });
    return true;
  } catch (err) {
    // Changed meanwhile: someone is acting on it, which is all this wanted.
    if (err instanceof PreconditionFailedError) return false;
    throw err;
  }
};
