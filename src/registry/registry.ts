import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_JSON_DEPTH, nestsTooDeep } from '../json/index.ts';
import {
  normalizeEtag,
  ObjectNotFoundError,
  type ObjectStore,
  PreconditionFailedError,
  type StoredObject,
} from '../storage/index.ts';
import {
  CorruptRecordError,
  IntegrityError,
  ModelNotFoundError,
  RegistryConflictError,
  VersionConflictError,
  VersionNotFoundError,
} from './errors.ts';
import {
  historyKeyTime,
  isValidModelName,
  keys,
  REGISTRY_PREFIX,
  validateModelName,
  versionOfPrefix,
} from './keys.ts';
import type {
  Aliases,
  CandidateAlias,
  HistoryRecord,
  Manifest,
  ServedVariant,
  VariantInfo,
} from './types.ts';
import { validateAliases, validateManifest } from './validate.ts';

export interface RetryOptions {
  /** attempts before RegistryConflictError. @default 25 */
  attempts?: number;
  /** first backoff ceiling, doubled per lost attempt (full jitter). @default 10 */
  baseDelayMs?: number;
  /** @default 250 */
  maxDelayMs?: number;
}

export interface LargeReadOptions {
  /** variants at least this large are read with parallel ranged GETs. @default 16 MiB */
  minBytes?: number;
  /** @default 8 MiB */
  partSize?: number;
  /** @default 6 */
  concurrency?: number;
}

export interface RegistryOptions {
  /** the time stamped on records and history keys. @default () => new Date() */
  clock?: () => Date;
  retry?: RetryOptions;
  largeRead?: LargeReadOptions;
}

export interface AliasesSnapshot {
  aliases: Aliases;
  etag: string;
}

export interface AliasesUpdate {
  /** the aliases now stored (`undefined` only when none exist and the update changed nothing) */
  aliases: Aliases | undefined;
  etag: string | undefined;
  /** false when the update function returned `undefined`: nothing was written */
  changed: boolean;
}

/** What `updateAliases` hands back: the next aliases, or `undefined` for "no change". */
export type AliasesUpdater = (current: Aliases | undefined) => Aliases | undefined;

export interface Reservation {
  model: string;
  version: number;
  key: string;
}

export interface ModelSummary {
  name: string;
  /** the malformed record that keeps this model from being served, when there is one */
  corrupt?: string;
  /** absent until a version was registered and promoted */
  production?: number;
  candidate?: CandidateAlias;
}

export interface HistoryQuery {
  /** only records stored under keys after this one (see `latestHistoryKey`) */
  afterKey?: string;
  /** only records stamped at or after this time */
  sinceMs?: number;
  /** only the newest N */
  limit?: number;
}

/** The upload a registered/rejected history record answers (see `uploadDetails`). */
export interface UploadRef {
  sourceKey: string;
  etag: string;
  /**
   * what else the outcome depends on: a digest of the samples sidecar's ETag and the upload's
   * options (`describeUpload` in src/ingest); unset: not known to the caller
   */
  inputs?: string;
}

export interface RejectionInput extends UploadRef {
  model: string;
  /** the machine-readable reason (`ModelRejectedError.code`, ...) */
  code: string;
  /** the readable reason shown to the uploader */
  reason: string;
  /** @default 'ingest' */
  actor?: string;
  details?: Record<string, unknown>;
}

/**
 * The agreed link between an upload and its outcome: ingest writes exactly one history record
 * `registered` (with `version`) or `rejected` (with `reason`) per upload, whose `details` carry
 * `sourceKey` (the `incoming/...` key, decoded) and `etag` (the object's ETag without quotes, as in
 * S3 event records). `maas push` waits for that record; `findUploadOutcome` finds it.
 */
export const uploadDetails = (
  upload: UploadRef,
): { sourceKey: string; etag: string; inputs?: string } => ({
  sourceKey: upload.sourceKey,
  etag: normalizeEtag(upload.etag),
  ...(upload.inputs === undefined ? {} : { inputs: upload.inputs }),
});

/**
 * Whether recorded upload details (`uploadDetails`) name `upload`: same key, bytes and inputs. A
 * caller that does not know the inputs (one that uploaded once and waits) matches on key and bytes.
 */
export function isSameUpload(
  details: Readonly<Record<string, unknown>>,
  upload: UploadRef,
): boolean {
  return (
    details.sourceKey === upload.sourceKey &&
    typeof details.etag === 'string' &&
    normalizeEtag(details.etag) === normalizeEtag(upload.etag) &&
    (upload.inputs === undefined || details.inputs === upload.inputs)
  );
}

export function isOutcomeOf(record: HistoryRecord, upload: UploadRef): boolean {
  if (record.event !== 'registered' && record.event !== 'rejected') return false;
  return isSameUpload(record.details ?? {}, upload);
}

const MiB = 1024 * 1024;
const LIST_CONCURRENCY = 8;
/** reservations walk up one version per lost race; a re-list jumps past a crowd of winners */
const RESERVE_ATTEMPTS = 200;
const RESERVE_RELIST_EVERY = 8;
const HISTORY_KEY_ATTEMPTS = 5;

/**
 * The model registry of docs/design.md's storage contract over an ObjectStore. Versions, variants and
 * manifests are immutable and created with `If-None-Match: *`; `aliases.json` is replaced with
 * `If-Match` in a bounded, jittered retry loop; history is append-only. Nothing here holds a lock:
 * every race is settled by S3's conditional writes, so any number of ingest, promote and rollback
 * invocations may run at once.
 */
export class Registry {
  private readonly clock: () => Date;
  private readonly retry: Required<RetryOptions>;
  private readonly largeRead: Required<LargeReadOptions>;

  constructor(
    readonly store: ObjectStore,
    options: RegistryOptions = {},
  ) {
    this.clock = options.clock ?? (() => new Date());
    this.retry = {
      attempts: options.retry?.attempts ?? 25,
      baseDelayMs: options.retry?.baseDelayMs ?? 10,
      maxDelayMs: options.retry?.maxDelayMs ?? 250,
    };
    this.largeRead = {
      minBytes: options.largeRead?.minBytes ?? 16 * MiB,
      partSize: options.largeRead?.partSize ?? 8 * MiB,
      concurrency: options.largeRead?.concurrency ?? 6,
    };
  }

  /**
   * Every model the registry knows (a registered version, or only history such as rejections).
   * A folder no model name could make (left by hand under `registry/`) is not a model: listing it
   * would fail every caller on its name.
   */
  async listModels(): Promise<string[]> {
    const { prefixes } = await this.store.list(REGISTRY_PREFIX, { delimiter: '/' });
    return prefixes
      .map((prefix) => prefix.slice(REGISTRY_PREFIX.length, -1))
      .filter(isValidModelName)
      .sort();
  }

  /** For `GET /v2/models` and `maas models`: each model with its production and candidate. */
  async listModelsSummary(): Promise<ModelSummary[]> {
    const names = await this.listModels();
    return mapLimit(names, LIST_CONCURRENCY, async (name) => {
      let current: AliasesSnapshot | undefined;
      try {
        current = await this.getAliases(name);
      } catch (err) {
        // One model's malformed record must not hide every other model.
        if (err instanceof CorruptRecordError) return { name, corrupt: err.key };
        throw err;
      }
      const summary: ModelSummary = { name };
      if (current?.aliases.production !== undefined)
        summary.production = current.aliases.production;
      if (current?.aliases.candidate !== undefined) summary.candidate = current.aliases.candidate;
      return summary;
    });
  }

  /** Whether anything is stored for the model: a version, aliases or history. */
  async hasModel(model: string): Promise<boolean> {
    validateModelName(model);
    const { keys: direct, prefixes } = await this.store.list(keys.modelPrefix(model), {
      delimiter: '/',
    });
    return direct.length > 0 || prefixes.length > 0;
  }

  /** Committed versions (those with a manifest), ascending. */
  async listVersions(model: string): Promise<number[]> {
    validateModelName(model);
    const { keys: direct, prefixes } = await this.store.list(keys.modelPrefix(model), {
      delimiter: '/',
    });
    if (direct.length === 0 && prefixes.length === 0) throw new ModelNotFoundError(model);
    const candidates = prefixes
      .map(versionOfPrefix)
      .filter((v): v is number => v !== undefined)
      .sort((a, b) => a - b);
    const committed = await mapLimit(candidates, LIST_CONCURRENCY, async (version) =>
      (await this.exists(keys.manifest(model, version))) ? version : undefined,
    );
    return committed.filter((v): v is number => v !== undefined);
  }

  async getManifest(model: string, version: number): Promise<Manifest> {
    validateModelName(model);
    const key = keys.manifest(model, version);
    const object = await this.getOrUndefined(key);
    if (object === undefined) throw new VersionNotFoundError(model, version);
    return validateManifest(parseJson(object, key, model, version), key, model, version);
  }

  /** `undefined` when the model has no aliases yet. */
  async getAliases(model: string): Promise<AliasesSnapshot | undefined> {
    validateModelName(model);
    const key = keys.aliases(model);
    const object = await this.getOrUndefined(key);
    if (object === undefined) return undefined;
    return { aliases: readAliases(object, key, model), etag: object.etag };
  }

  /** Conditional GET for warm caches: `undefined` while `aliases.json` still has `etag`. */
  async getAliasesIfChanged(model: string, etag: string): Promise<AliasesSnapshot | undefined> {
    validateModelName(model);
    const key = keys.aliases(model);
    let object: StoredObject | undefined;
    try {
      object = await this.store.get(key, { ifNoneMatch: etag });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new ModelNotFoundError(model);
      throw err;
    }
    if (object === undefined) return undefined;
    return { aliases: readAliases(object, key, model), etag: object.etag };
  }

  /**
   * Claims the next version number by creating its `reserved.json` with `If-None-Match: *`.
   * Every claimed number is one above an existing version, so under any race the versions are
   * 1..N, each given out once.
   */
  async reserveVersion(model: string, source?: UploadRef): Promise<Reservation> {
    validateModelName(model);
    const highest = await this.highestVersion(model);
    // With a source, start at the highest number: when it is this upload's own reservation (an
    // earlier delivery reserved it, then lost the answer or failed before recording it), the 412
    // below finds it and the retry resumes that number instead of leaving a gap.
    let version = source !== undefined && highest > 0 ? highest : highest + 1;
    for (let attempt = 1; attempt <= RESERVE_ATTEMPTS; attempt++) {
      const key = keys.reservation(model, version);
      const body = JSON.stringify({
        model,
        version,
        reservedAt: this.clock().toISOString(),
        ...(source === undefined ? {} : { source: uploadDetails(source) }),
      });
      try {
        await this.store.put(key, body, { ifNoneMatch: '*', contentType: 'application/json' });
        return { model, version, key };
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
        if (source !== undefined && (await this.reservedFor(model, version, source))) {
          return { model, version, key };
        }
      }
      version += 1;
      if (attempt % RESERVE_RELIST_EVERY === 0) {
        version = Math.max(version, (await this.highestVersion(model)) + 1);
        await sleep(Math.random() * this.retry.baseDelayMs);
      }
    }
    throw new RegistryConflictError(keys.modelPrefix(model), RESERVE_ATTEMPTS);
  }

  /**
   * Writes a variant's bytes once. Writing the same bytes again (a retried ingest) is a no-op;
   * different bytes for an existing variant are a VersionConflictError.
   */
  async putVariant(
    model: string,
    version: number,
    variant: ServedVariant,
    bytes: Uint8Array,
  ): Promise<VariantInfo> {
    validateModelName(model);
    return this.putImmutable(keys.variant(model, version, variant), bytes);
  }

  /** The served variant pre-optimized by ingest; written once, like the variants. */
  async putOptimized(
    model: string,
    version: number,
    variant: ServedVariant,
    bytes: Uint8Array,
  ): Promise<VariantInfo> {
    validateModelName(model);
    return this.putImmutable(keys.optimized(model, version, variant), bytes);
  }

  private async putImmutable(key: string, bytes: Uint8Array): Promise<VariantInfo> {
    const info: VariantInfo = { key, sha256: sha256Hex(bytes), bytes: bytes.byteLength };
    try {
      await this.store.put(key, bytes, {
        ifNoneMatch: '*',
        contentType: 'application/octet-stream',
        metadata: { 'maas-sha256': info.sha256 },
      });
      return info;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    const existing = await this.store.head(key);
    if (existing.metadata['maas-sha256'] !== info.sha256 || existing.size !== info.bytes) {
      throw new VersionConflictError(key);
    }
    return info;
  }

  /**
   * Writes `manifest.json`, the commit point of a version: readers see a version only once this
   * exists. Committing the same manifest again is a no-op.
   */
  async commitManifest(manifest: Manifest): Promise<{ key: string; etag: string }> {
    validateModelName(manifest.model);
    const key = keys.manifest(manifest.model, manifest.version);
    const body = JSON.stringify(manifest, null, 2);
    try {
      const { etag } = await this.store.put(key, body, {
        ifNoneMatch: '*',
        contentType: 'application/json',
      });
      return { key, etag };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    const existing = await this.read(key);
    if (new TextDecoder().decode(existing.body) !== body) {
      throw new VersionConflictError(key);
    }
    return { key, etag: existing.etag };
  }

  /**
   * Read-modify-write of `aliases.json`: `update` sees the current aliases (`undefined` when none)
   * and returns the next ones, or `undefined` to change nothing. A write lost to a concurrent one
   * re-reads and calls `update` again, so `update` must be a pure function of its argument.
   * `model` and `updatedAt` are stamped by the registry.
   */
  async updateAliases(model: string, update: AliasesUpdater): Promise<AliasesUpdate> {
    validateModelName(model);
    const key = keys.aliases(model);
    for (let attempt = 0; attempt < this.retry.attempts; attempt++) {
      const current = await this.getAliases(model);
      const next = update(current === undefined ? undefined : structuredClone(current.aliases));
      if (next === undefined) {
        return { aliases: current?.aliases, etag: current?.etag, changed: false };
      }
      const stamped: Aliases = { ...next, model, updatedAt: this.clock().toISOString() };
      try {
        const { etag } = await this.store.put(key, JSON.stringify(stamped, null, 2), {
          ...(current === undefined ? { ifNoneMatch: '*' as const } : { ifMatch: current.etag }),
          contentType: 'application/json',
        });
        return { aliases: stamped, etag, changed: true };
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
      await this.backoff(attempt);
    }
    throw new RegistryConflictError(key, this.retry.attempts);
  }

  /** Appends an audit record; records are never rewritten. */
  async appendHistory(record: HistoryRecord): Promise<{ key: string }> {
    validateModelName(record.model);
    const parsed = Date.parse(record.at);
    const atMs = Number.isNaN(parsed) ? this.clock().getTime() : parsed;
    const body = JSON.stringify(record, null, 2);
    for (let attempt = 1; attempt <= HISTORY_KEY_ATTEMPTS; attempt++) {
      const key = keys.historyRecord(record.model, atMs, randomBytes(6).toString('hex'));
      try {
        await this.store.put(key, body, { ifNoneMatch: '*', contentType: 'application/json' });
        return { key };
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
    }
    throw new RegistryConflictError(keys.historyPrefix(record.model), HISTORY_KEY_ATTEMPTS);
  }

  /**
   * History records, oldest first; ModelNotFoundError when nothing is stored for the model.
   * `afterKey` and `sinceMs` skip older records without reading them (a key starts with its
   * time); `limit` keeps the newest ones.
   */
  async history(model: string, options: HistoryQuery = {}): Promise<HistoryRecord[]> {
    validateModelName(model);
    const prefix = keys.historyPrefix(model);
    const bounds = [
      options.afterKey,
      options.sinceMs === undefined ? undefined : keys.historyTimePrefix(model, options.sinceMs),
    ].filter((bound): bound is string => bound !== undefined);
    const startAfter = bounds.sort().at(-1);
    const { keys: listed } = await this.store.list(
      prefix,
      startAfter === undefined ? {} : { startAfter },
    );
    if (listed.length === 0 && startAfter === undefined && !(await this.hasModel(model))) {
      throw new ModelNotFoundError(model);
    }
    let selected = listed
      .map((head) => head.key)
      .filter((key) => historyKeyTime(key) !== undefined);
    if (options.limit !== undefined) selected = selected.slice(-Math.max(0, options.limit));
    return mapLimit(selected, LIST_CONCURRENCY, async (key) =>
      parseRecord<HistoryRecord>(await this.read(key), key),
    );
  }

  /** The newest history key, to wait for records written after it (`afterKey`). */
  async latestHistoryKey(model: string): Promise<string | undefined> {
    validateModelName(model);
    const { keys: listed } = await this.store.list(keys.historyPrefix(model));
    return listed.at(-1)?.key;
  }

  /** Records that an upload was refused; writes nothing else. */
  async recordRejection(input: RejectionInput): Promise<{ key: string; record: HistoryRecord }> {
    const record: HistoryRecord = {
      model: input.model,
      event: 'rejected',
      at: this.clock().toISOString(),
      actor: input.actor ?? 'ingest',
      reason: input.reason,
      details: { ...input.details, ...uploadDetails(input), code: input.code },
    };
    const { key } = await this.appendHistory(record);
    return { key, record };
  }

  /** The registered/rejected record of one upload, `undefined` while ingest has not decided. */
  async findUploadOutcome(
    model: string,
    upload: UploadRef,
    options: Pick<HistoryQuery, 'afterKey' | 'sinceMs'> = {},
  ): Promise<HistoryRecord | undefined> {
    try {
      const records = await this.history(model, options);
      return records.find((record) => isOutcomeOf(record, upload));
    } catch (err) {
      // A first upload of a model: nothing is stored for it until ingest decides.
      if (err instanceof ModelNotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * A variant's bytes, verified against the sha256 and size in the manifest; IntegrityError when
   * they differ or the object is gone. Large variants are read with parallel ranged GETs.
   */
  async readVariant(
    model: string,
    version: number,
    variant: ServedVariant,
    options: { manifest?: Manifest } = {},
  ): Promise<Uint8Array> {
    const manifest = options.manifest ?? (await this.getManifest(model, version));
    const info = manifest.variants[variant];
    if (info !== undefined && info.key !== keys.variant(model, version, variant)) {
      throw new CorruptRecordError(keys.manifest(model, version), undefined, {
        model,
        version,
        problems: [`variants.${variant}.key names ${info.key}, not this version's own object`],
      });
    }
    if (info === undefined) {
      throw new VersionNotFoundError(
        model,
        version,
        `version ${version} of model "${model}" has no ${variant} variant`,
      );
    }
    let body: Uint8Array;
    try {
      body =
        this.store.getLarge !== undefined && info.bytes >= this.largeRead.minBytes
          ? (
              await this.store.getLarge(info.key, {
                partSize: this.largeRead.partSize,
                concurrency: this.largeRead.concurrency,
              })
            ).body
          : (await this.read(info.key)).body;
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw new IntegrityError(
          info.key,
          'the manifest lists this variant but the object is gone',
        );
      }
      throw err;
    }
    const actual = sha256Hex(body);
    if (body.byteLength !== info.bytes || actual !== info.sha256) {
      throw new IntegrityError(
        info.key,
        `content does not match the manifest (sha256 ${actual}, ${body.byteLength} bytes; expected ${info.sha256}, ${info.bytes} bytes)`,
        { expected: info.sha256, actual },
      );
    }
    return body;
  }

  /** whether `version` is reserved for this very upload and not committed yet */
  private async reservedFor(model: string, version: number, source: UploadRef): Promise<boolean> {
    const reservation = await this.getOrUndefined(keys.reservation(model, version));
    if (reservation === undefined) return false;
    let reservedSource: unknown;
    try {
      reservedSource = (
        JSON.parse(new TextDecoder().decode(reservation.body)) as { source?: unknown }
      ).source;
    } catch {
      return false;
    }
    const match =
      typeof reservedSource === 'object' &&
      reservedSource !== null &&
      isSameUpload(reservedSource as Record<string, unknown>, source);
    return match && !(await this.exists(keys.manifest(model, version)));
  }

  private async highestVersion(model: string): Promise<number> {
    const { prefixes } = await this.store.list(keys.modelPrefix(model), { delimiter: '/' });
    let highest = 0;
    for (const prefix of prefixes) highest = Math.max(highest, versionOfPrefix(prefix) ?? 0);
    return highest;
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.store.head(key);
      return true;
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return false;
      throw err;
    }
  }

  /** A plain GET, which the store answers with an object or an error, never `undefined`. */
  private async read(key: string): Promise<StoredObject> {
    const object = await this.store.get(key);
    if (object === undefined) throw new ObjectNotFoundError(key);
    return object;
  }

  private async getOrUndefined(key: string): Promise<StoredObject | undefined> {
    try {
      return await this.store.get(key);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return undefined;
      throw err;
    }
  }

  private async backoff(attempt: number): Promise<void> {
    const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** attempt);
    await sleep(Math.random() * ceiling);
  }
}

export const sha256Hex = (bytes: Uint8Array): string =>
  createHash('sha256').update(bytes).digest('hex');

function parseJson(object: StoredObject, key: string, model?: string, version?: number): unknown {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(object.body));
    // whatever reads the record next (a log line, the CLI's output) would overflow the stack
    if (nestsTooDeep(value)) throw new TypeError(`nests more than ${MAX_JSON_DEPTH} levels deep`);
    return value;
  } catch (err) {
    throw new CorruptRecordError(key, err, {
      model,
      version,
      problems: [`not JSON: ${err instanceof Error ? err.message : String(err)}`],
    });
  }
}

function parseRecord<T>(object: StoredObject, key: string): T {
  const value = parseJson(object, key);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CorruptRecordError(key, new TypeError('expected a JSON object'), {
      problems: ['the record is not a JSON object'],
    });
  }
  return value as T;
}

const readAliases = (object: StoredObject, key: string, model: string): Aliases =>
  validateAliases(parseJson(object, key, model), key, model);

async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
