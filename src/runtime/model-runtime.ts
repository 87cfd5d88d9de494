import { performance } from 'node:perf_hooks';
import type * as ort from 'onnxruntime-node';
import { definedOnly, loadConfig, type RuntimeConfig } from '../config/index.ts';
import { errorMessage } from '../errors/index.ts';
import {
  type Aliases,
  CorruptRecordError,
  type Manifest,
  ModelNotFoundError,
  previousKnownGood,
  type ServedVariant,
  sha256Hex,
  type VariantInfo,
} from '../registry/index.ts';
import {
  ObjectNotFoundError,
  type ObjectStore,
  StorageUnavailableError,
} from '../storage/index.ts';
import { DiskCache } from './disk-cache.ts';
import {
  ModelIntegrityError,
  ModelLoadError,
  ModelUnavailableError,
  NoProductionVersionError,
} from './errors.ts';
import type {
  ModelDescription,
  ModelListing,
  ModelLoadTiming,
  ModelProvider,
  RouteVariant,
  RuntimeHooks,
  RuntimeLoadedModel,
} from './provider.ts';
import { SessionCache, type SessionEntry } from './session-cache.ts';
import {
  createSession as defaultCreateSession,
  runtimeVersion,
  type SessionFactory,
} from './sessions.ts';
import { TtlCache } from './ttl-cache.ts';
import { type HashedBytes, readHashed } from './verified-read.ts';

/** What the runtime reads from the registry (the storage engineer's `Registry` satisfies it). */
export interface RegistryReader {
  listModels(): Promise<string[]>;
  /** committed versions, ascending */
  listVersions(model: string): Promise<number[]>;
  /** throws VersionNotFoundError / ModelNotFoundError */
  getManifest(model: string, version: number): Promise<Manifest>;
  getAliases(model: string): Promise<{ aliases: Aliases; etag: string } | undefined>;
  /** `undefined` when the object still has this ETag */
  getAliasesIfChanged(
    model: string,
    etag: string,
  ): Promise<{ aliases: Aliases; etag: string } | undefined>;
}

export interface ModelRuntimeOptions extends Partial<RuntimeConfig> {
  registry: RegistryReader;
  /** where the variant bytes named by manifests are read from */
  store: ObjectStore;
  /** draws the canary: the candidate serves when `random() < weight`. @default Math.random */
  random?: () => number;
  /** ms clock for the alias TTL. @default Date.now */
  now?: () => number;
  hooks?: RuntimeHooks;
  /** @default the runtime's one session factory (sessions.ts) */
  createSession?: SessionFactory;
}

interface KnownAliases {
  aliases: Aliases | undefined;
  etag?: string;
}

interface Load {
  entry: SessionEntry;
  timing?: ModelLoadTiming;
}

/**
 * Serves registered model versions: routes unpinned requests by `aliases.json`, cold-loads a
 * version (manifest → served variant → verified bytes → session) once however many requests ask
 * for it at the same time, and keeps sessions in memory and bytes on local disk, both bounded.
 * A loaded session never needs the store again, so cached models keep serving through an outage.
 */
export class ModelRuntime implements ModelProvider {
  readonly settings: RuntimeConfig;
  private readonly registry: RegistryReader;
  private readonly store: ObjectStore;
  private readonly random: () => number;
  private readonly hooks: RuntimeHooks;
  private readonly createSession: SessionFactory;
  private readonly sessions: SessionCache;
  private readonly disk: DiskCache;
  private readonly loading = new Map<string, Promise<Load>>();
  private readonly diskWrites = new Set<Promise<void>>();
  private readonly manifests = new Map<string, Manifest>();
  private readonly aliases: TtlCache<KnownAliases>;
  private readonly versionLists: TtlCache<number[]>;
  private readonly modelList: TtlCache<string[]>;

  constructor(options: ModelRuntimeOptions) {
    const { registry, store, random, now, hooks, createSession, ...overrides } = options;
    this.settings = { ...loadConfig({}).runtime, ...definedOnly(overrides) };
    this.registry = registry;
    this.store = store;
    this.random = random ?? Math.random;
    this.hooks = hooks ?? {};
    this.createSession = createSession ?? defaultCreateSession;
    this.sessions = new SessionCache(this.settings.sessionCacheBytes, (entry) =>
      this.evicted(entry),
    );
    this.disk = new DiskCache(this.settings.tmpCacheDir, this.settings.tmpCacheBytes);
    const clock = now ?? Date.now;
    this.aliases = new TtlCache(this.settings.aliasTtlMs, clock);
    this.versionLists = new TtlCache(this.settings.aliasTtlMs, clock);
    this.modelList = new TtlCache(this.settings.aliasTtlMs, clock);
  }

  /** models with at least one committed version (a model with only rejections is not listed) */
  async listModels(): Promise<ModelListing[]> {
    const names = (await this.modelList.get('', () => this.registry.listModels())) ?? [];
    const listings = await Promise.all(
      names.map(async (name): Promise<ModelListing | undefined> => {
        let aliases: Aliases | undefined;
        try {
          aliases = (await this.readAliases(name)).aliases;
        } catch (err) {
          // A model whose aliases.json is malformed answers 503 itself; the list goes on without it.
          if (err instanceof ModelNotFoundError || err instanceof CorruptRecordError)
            return undefined;
          throw err;
        }
        // no aliases: nothing was ever registered (only rejected uploads), nothing to serve
        if (aliases === undefined) return undefined;
        const { production, candidate } = aliases;
        return {
          name,
          ...(production === undefined ? {} : { production }),
          ...(candidate === undefined
            ? {}
            : { candidate: { version: candidate.version, weight: candidate.weight } }),
        };
      }),
    );
    return listings.filter((listing) => listing !== undefined);
  }

  async describe(model: string, version?: number): Promise<ModelDescription> {
    const versions = await this.versions(model);
    const described =
      version ?? (await this.readAliases(model)).aliases?.production ?? versions.at(-1);
    if (described === undefined) throw new ModelNotFoundError(model);
    const manifest = await this.manifest(model, described);
    return { name: model, versions, version: described, manifest };
  }

  async acquire(model: string, version?: number): Promise<RuntimeLoadedModel> {
    if (version !== undefined) return this.serve(model, version, 'pinned');
    let { aliases } = await this.readAliases(model);
    if (aliases?.production === undefined && aliases?.candidate === undefined) {
      // This instance's view may predate the write that gave the model a version to serve
      // (another instance may already answer ready): read again, a conditional GET, before
      // answering no. Only this answer pays for it; a model that serves keeps the TTL.
      ({ aliases } = await this.readAliases(model, { fresh: true }));
    }
    const candidate = aliases?.candidate;
    const production = aliases?.production;
    if (candidate !== undefined && (production === undefined || this.random() < candidate.weight)) {
      return this.serve(model, candidate.version, 'candidate');
    }
    if (production === undefined) {
      throw new NoProductionVersionError(model, await this.versions(model));
    }
    const served = await this.serve(model, production, 'production');
    const previous = aliases === undefined ? undefined : previousKnownGood(aliases);
    return aliases?.promotedAt === undefined || previous === undefined
      ? served
      : { ...served, promotion: { at: aliases.promotedAt, previous } };
  }

  /**
   * Loads the production and candidate versions of each model, as a provisioned instance does
   * during its init; a model that cannot be loaded is reported, not thrown: the instance serves
   * the others, and loads it on its first request as usual.
   */
  async preload(models: readonly string[]): Promise<{ model: string; error?: string }[]> {
    return Promise.all(
      models.map(async (model) => {
        try {
          const { aliases } = await this.readAliases(model);
          const versions = [aliases?.production, aliases?.candidate?.version].filter(
            (v): v is number => v !== undefined,
          );
          if (versions.length === 0) throw new NoProductionVersionError(model, []);
          await Promise.all(versions.map((v) => this.load(model, v)));
          return { model };
        } catch (err) {
          return { model, error: errorMessage(err) };
        }
      }),
    );
  }

  /** `model@version` of every live session, least recently used first */
  loadedModels(): string[] {
    return this.sessions.keys();
  }

  /**
   * Waits for loads and disk-cache writes in progress, then releases every session; handles
   * still held reload on their next run.
   */
  async close(): Promise<void> {
    await Promise.allSettled([...this.loading.values()]);
    await this.settled();
    this.sessions.clear();
  }

  /** resolves once the disk-cache writes started so far have finished */
  async settled(): Promise<void> {
    await Promise.all([...this.diskWrites]);
  }

  private async serve(
    model: string,
    version: number,
    variant: RouteVariant,
  ): Promise<RuntimeLoadedModel> {
    try {
      return this.handle(await this.load(model, version), variant);
    } catch (err) {
      throw err instanceof ModelUnavailableError || err instanceof ModelLoadError
        ? err.routed(variant)
        : err;
    }
  }

  private handle(load: Load, variant: RouteVariant): RuntimeLoadedModel {
    const { entry, timing } = load;
    const current = { entry };
    return {
      model: entry.model,
      version: entry.version,
      variant,
      served: entry.served,
      inputs: entry.inputs,
      outputs: entry.outputs,
      ...(entry.inputLimits === undefined ? {} : { inputLimits: entry.inputLimits }),
      ...(timing === undefined ? {} : { load: timing }),
      run: (feeds, outputNames) => this.run(current, feeds, outputNames),
    };
  }

  private async run(
    current: { entry: SessionEntry },
    feeds: Record<string, ort.Tensor>,
    outputNames: string[],
  ): Promise<Record<string, ort.Tensor>> {
    // A handle can outlive its session's stay in the cache: reload rather than run a released one.
    while (current.entry.released) {
      current.entry = (await this.load(current.entry.model, current.entry.version)).entry;
    }
    const entry = current.entry;
    entry.inFlight += 1;
    try {
      // Outputs of the ONNX models we register are tensors: the node binding has no sequences or maps.
      return (await entry.session.run(feeds, outputNames)) as Record<string, ort.Tensor>;
    } finally {
      entry.inFlight -= 1;
      if (entry.evicted && entry.inFlight === 0) this.release(entry);
    }
  }

  private async load(model: string, version: number): Promise<Load> {
    const key = `${model}@${version}`;
    const cached = this.sessions.get(key);
    if (cached !== undefined) return { entry: cached };
    const pending = this.loading.get(key);
    if (pending !== undefined) return pending;
    const started = this.coldLoad(model, version, key).finally(() => this.loading.delete(key));
    this.loading.set(key, started);
    return started;
  }

  private async coldLoad(model: string, version: number, key: string): Promise<Load> {
    const t0 = performance.now();
    const manifest = await this.manifest(model, version);
    const served: ServedVariant = manifest.variants[manifest.served] ? manifest.served : 'fp32';
    const plain = manifest.variants[served] ?? manifest.variants.fp32;
    const threads = { intraOpThreads: this.settings.intraOpThreads };
    // The graph ingest optimized already, when it was made from this variant by this very
    // onnxruntime: its transforms are then skipped, the cold start's largest cost after the fetch.
    const pre = manifest.optimized;
    const usable = pre !== undefined && pre.of === served && pre.runtime === runtimeVersion();
    let fetched = await this.fetchVariant(model, version, usable ? pre : plain);
    let sessionStart = performance.now();
    let session: ort.InferenceSession;
    try {
      session = await this.createSession(
        fetched.bytes,
        usable ? { ...threads, optimizationLevel: pre.loadLevel } : threads,
      );
    } catch (err) {
      if (!usable) throw new ModelLoadError(model, version, { cause: err });
      // A stored optimization this runtime cannot load is an optimization lost, not an outage.
      fetched = await this.fetchVariant(model, version, plain);
      sessionStart = performance.now();
      try {
        session = await this.createSession(fetched.bytes, threads);
      } catch (plainErr) {
        throw new ModelLoadError(model, version, { cause: plainErr });
      }
    }
    const done = performance.now();
    const entry: SessionEntry = {
      key,
      model,
      version,
      served,
      bytes: fetched.bytes.byteLength,
      session,
      inputs: manifest.inputs,
      outputs: manifest.outputs,
      ...(manifest.inputLimits === undefined ? {} : { inputLimits: manifest.inputLimits }),
      inFlight: 0,
      evicted: false,
      released: false,
    };
    this.sessions.add(entry);
    const timing: ModelLoadTiming = {
      source: fetched.source,
      bytes: entry.bytes,
      fetchMs: fetched.fetchMs,
      verifyMs: fetched.verifyMs,
      sessionMs: done - sessionStart,
      totalMs: done - t0,
    };
    this.hooks.onModelLoad?.({ model, version, served, ...timing });
    return { entry, timing };
  }

  private async fetchVariant(
    model: string,
    version: number,
    variant: VariantInfo,
  ): Promise<{ bytes: Uint8Array; source: 's3' | 'tmp'; fetchMs: number; verifyMs: number }> {
    const expected = variant.sha256.toLowerCase();
    let t0 = performance.now();
    const local = await this.disk.read(expected).catch(() => undefined);
    if (local !== undefined) {
      const t1 = performance.now();
      if (sha256Hex(local) === expected) {
        return { bytes: local, source: 'tmp', fetchMs: t1 - t0, verifyMs: performance.now() - t1 };
      }
      // A torn or tampered cache file: drop it and read the bytes from the store again.
      await this.disk.remove(expected).catch(() => undefined);
      t0 = performance.now();
    }
    const {
      bytes,
      sha256: actual,
      objectBytes,
      verifyMs,
    } = await this.read(model, version, variant);
    const fetchMs = performance.now() - t0 - verifyMs;
    if (actual !== expected || objectBytes !== variant.bytes) {
      throw new ModelIntegrityError(model, version, {
        key: variant.key,
        expected,
        actual,
        ...(objectBytes === variant.bytes
          ? {}
          : { bytes: { expected: variant.bytes, actual: objectBytes } }),
        retryAfterSeconds: this.settings.retryAfterSeconds,
      });
    }
    // The disk cache only saves a later S3 read: it is written off the load's critical path, and a
    // full or read-only /tmp must not fail the load.
    const write = this.disk
      .write(expected, bytes)
      .catch(() => undefined)
      .finally(() => this.diskWrites.delete(write));
    this.diskWrites.add(write);
    return { bytes, source: 's3', fetchMs, verifyMs };
  }

  private async read(model: string, version: number, variant: VariantInfo): Promise<HashedBytes> {
    try {
      return await readHashed(this.store, variant.key, variant.bytes, {
        minBytes: this.settings.rangedGetMinBytes,
        partBytes: this.settings.rangedGetPartBytes,
        concurrency: this.settings.rangedGetConcurrency,
      });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw this.unavailable(
          model,
          version,
          `its manifest names ${variant.key}, which is missing`,
          err,
        );
      }
      throw this.storageError(model, version, err);
    }
  }

  private async manifest(model: string, version: number): Promise<Manifest> {
    const key = `${model}@${version}`;
    const known = this.manifests.get(key);
    if (known !== undefined) return known;
    try {
      const manifest = await this.registry.getManifest(model, version);
      // Manifests are immutable once committed: cache them for the life of the instance.
      this.manifests.set(key, manifest);
      return manifest;
    } catch (err) {
      throw this.storageError(model, version, err);
    }
  }

  private async versions(model: string): Promise<number[]> {
    try {
      const versions = await this.versionLists.get(model, async () => {
        const list = await this.registry.listVersions(model);
        return list.length === 0 ? undefined : list;
      });
      if (versions === undefined) throw new ModelNotFoundError(model);
      return versions;
    } catch (err) {
      throw this.storageError(model, undefined, err);
    }
  }

  /** the model's aliases within the TTL; a model with versions but no aliases has `undefined` */
  private async readAliases(model: string, options?: { fresh?: boolean }): Promise<KnownAliases> {
    try {
      const known = await this.aliases.get(
        model,
        async (previous) => {
          if (previous?.etag !== undefined) {
            const changed = await this.registry
              .getAliasesIfChanged(model, previous.etag)
              .catch((err: unknown) => {
                // aliases.json was deleted: read the model afresh below
                if (err instanceof ModelNotFoundError) return null;
                throw err;
              });
            if (changed === undefined) return previous;
            if (changed !== null) return { aliases: changed.aliases, etag: changed.etag };
          }
          const current = await this.registry.getAliases(model);
          if (current !== undefined) return { aliases: current.aliases, etag: current.etag };
          return (await this.registry.listVersions(model)).length === 0
            ? undefined
            : { aliases: undefined };
        },
        options,
      );
      if (known === undefined) throw new ModelNotFoundError(model);
      return known;
    } catch (err) {
      throw this.storageError(model, undefined, err);
    }
  }

  private storageError(model: string, version: number | undefined, err: unknown): unknown {
    if (!(err instanceof StorageUnavailableError)) return err;
    return this.unavailable(
      model,
      version,
      `the model store is unreachable (${errorMessage(err)})`,
      err,
    );
  }

  private unavailable(
    model: string,
    version: number | undefined,
    reason: string,
    cause: unknown,
  ): ModelUnavailableError {
    return new ModelUnavailableError(model, version, reason, {
      cause,
      retryAfterSeconds: this.settings.retryAfterSeconds,
    });
  }

  private evicted(entry: SessionEntry): void {
    this.hooks.onModelEvict?.({ model: entry.model, version: entry.version, bytes: entry.bytes });
    if (entry.inFlight === 0) this.release(entry);
  }

  private release(entry: SessionEntry): void {
    if (entry.released) return;
    entry.released = true;
    // Nothing can use the session any more; a failed release leaves nothing to undo.
    entry.session.release().catch(() => undefined);
  }
}
