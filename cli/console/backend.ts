import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { MaasError } from '../../src/errors/index.ts';
import {
  promoteVersion,
  rollbackLatest,
  rollbackTo,
  setCanaryWeight,
} from '../../src/guard/index.ts';
import {
  type Aliases,
  type HistoryRecord,
  keys,
  type Manifest,
  MODEL_SUFFIX,
  ModelNotFoundError,
  type Registry,
  validateModelName,
} from '../../src/registry/index.ts';
import { normalizeEtag } from '../../src/storage/index.ts';
import { callApi } from '../api.ts';
import type { Target } from '../target.ts';
import type { MetricsSource } from './metrics.ts';
import type {
  ActionResponse,
  ExampleResponse,
  HistoryEntry,
  HistoryPage,
  InferResponse,
  MetricsResponse,
  ModelResponse,
  ModelRow,
  ModelStatus,
  ModelsResponse,
  OutcomeResponse,
  TargetInfo,
  UploadResponse,
  VersionInfo,
} from './types.ts';

/** A request the console cannot act on; the message says what to send instead. */
export class ConsoleRequestError extends MaasError {
  constructor(message: string) {
    super('InvalidConsoleRequest', message);
  }
}

export interface ConsoleBackendOptions {
  target: Target;
  registry: Registry;
  /** the registry's client, for multipart uploads */
  client: S3Client;
  metrics: MetricsSource;
  /** the actor recorded in history for the page's actions. @default 'console' */
  actor?: string;
  clock?: () => number;
}

/** history records per page unless the page asks for fewer */
export const HISTORY_PAGE = 50;
const MAX_HISTORY_PAGE = 200;
const PART_SIZE = 8 * 1024 * 1024;
/** models whose status is computed at once */
const CONCURRENCY = 4;

const mapLimit = async <T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>) => {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
};

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** the versions worth a chart: production, candidate, and the newest few */
const watchedVersions = (aliases: Aliases | undefined, versions: readonly number[]): number[] => {
  const set = new Set<number>(versions.slice(-3));
  if (aliases?.production !== undefined) set.add(aliases.production);
  if (aliases?.candidate !== undefined) set.add(aliases.candidate.version);
  return [...set].sort((a, b) => a - b);
};

/**
 * What the console does, over the same functions the CLI calls: the registry through S3, the
 * guard's promote and rollback, the HTTP API for inference, and one source of figures.
 */
export class ConsoleBackend {
  readonly target: Target;
  readonly registry: Registry;
  readonly metrics: MetricsSource;
  private readonly client: S3Client;
  private readonly actor: string;
  private readonly clock: () => number;

  constructor(options: ConsoleBackendOptions) {
    this.target = options.target;
    this.registry = options.registry;
    this.client = options.client;
    this.metrics = options.metrics;
    this.actor = options.actor ?? 'console';
    this.clock = options.clock ?? Date.now;
  }

  targetInfo(): TargetInfo {
    const t = this.target;
    return {
      kind: t.kind,
      api: t.apiUrl,
      bucket: t.bucket,
      ...(t.s3Endpoint === undefined ? {} : { s3: t.s3Endpoint }),
      ...(t.kind === 'stack' ? { stackName: t.stackName } : {}),
      metrics: this.metrics.kind,
      prometheus: this.metrics.prometheus !== undefined,
    };
  }

  async models(): Promise<ModelsResponse> {
    const names = await this.registry.listModels();
    const now = this.clock();
    let metricsError: string | undefined;
    const models = await mapLimit(names, CONCURRENCY, async (name): Promise<ModelRow> => {
      try {
        const snapshot = await this.registry.getAliases(name);
        const aliases = snapshot?.aliases;
        const last = await this.lastRecord(name);
        const versions = watchedVersions(aliases, []);
        const figures = await this.metrics.modelMetrics(name, versions, now, aliases);
        if (figures.error !== undefined) metricsError = figures.error;
        const { status, detail } = statusOf(aliases, last, figures);
        return {
          name,
          ...(aliases?.production === undefined ? {} : { production: aliases.production }),
          ...(aliases?.candidate === undefined ? {} : { candidate: aliases.candidate }),
          status,
          ...(detail === undefined ? {} : { statusDetail: detail }),
          ...figures.summary,
          spark: sparkOf(figures),
        };
      } catch (err) {
        return {
          name,
          status: 'unreadable',
          statusDetail: message(err),
          rps: null,
          errorRate: null,
          spark: [],
        };
      }
    });
    return {
      target: this.targetInfo(),
      models,
      ...(metricsError === undefined ? {} : { metricsError }),
      now: new Date(now).toISOString(),
    };
  }

  async model(name: string): Promise<ModelResponse> {
    validateModelName(name);
    const problems: string[] = [];
    let aliases: Aliases | undefined;
    try {
      aliases = (await this.registry.getAliases(name))?.aliases;
    } catch (err) {
      problems.push(`aliases.json cannot be read: ${message(err)}`);
    }
    const numbers = await this.registry.listVersions(name);
    const versions = await mapLimit(numbers, CONCURRENCY, async (version): Promise<VersionInfo> => {
      const labels = labelsOf(aliases, version);
      try {
        return { version, labels, manifest: await this.registry.getManifest(name, version) };
      } catch (err) {
        problems.push(`v${version}: ${message(err)}`);
        return { version, labels, error: message(err) };
      }
    });
    const last = await this.lastRecord(name).catch(() => undefined);
    const figures = await this.metrics.modelMetrics(
      name,
      watchedVersions(aliases, numbers),
      this.clock(),
      aliases,
    );
    const { status, detail } = statusOf(aliases, last, figures);
    return {
      name,
      ...(aliases === undefined ? {} : { aliases }),
      versions,
      status,
      ...(detail === undefined ? {} : { statusDetail: detail }),
      problems,
    };
  }

  /** Newest first, `limit` records older than `before` (a key of the previous page). */
  async history(name: string, before?: string, limit = HISTORY_PAGE): Promise<HistoryPage> {
    validateModelName(name);
    const size = Math.min(Math.max(1, Math.trunc(limit)), MAX_HISTORY_PAGE);
    const { keys: listed } = await this.registry.store.list(keys.historyPrefix(name));
    const all = listed.map((head) => head.key).filter((key) => key.endsWith('.json'));
    if (all.length === 0 && !(await this.registry.hasModel(name))) {
      throw new ModelNotFoundError(name);
    }
    const older = before === undefined ? all : all.filter((key) => key < before);
    const page = older.slice(-size).reverse();
    const entries = await mapLimit(page, 8, async (key): Promise<HistoryEntry> => {
      try {
        const object = await this.registry.store.get(key);
        const text = new TextDecoder().decode(object?.body ?? new Uint8Array());
        const record = JSON.parse(text) as HistoryRecord;
        if (typeof record !== 'object' || record === null || typeof record.event !== 'string') {
          return { key, error: 'not a history record (no "event")' };
        }
        return { key, record };
      } catch (err) {
        return { key, error: `unreadable: ${message(err)}` };
      }
    });
    const oldest = page.at(-1);
    return {
      entries,
      total: all.length,
      ...(oldest !== undefined && older.length > size ? { nextBefore: oldest } : {}),
    };
  }

  async modelMetrics(name: string): Promise<MetricsResponse> {
    validateModelName(name);
    const aliases = (await this.registry.getAliases(name).catch(() => undefined))?.aliases;
    const versions = await this.registry.listVersions(name).catch(() => [] as number[]);
    return this.metrics.modelMetrics(
      name,
      watchedVersions(aliases, versions),
      this.clock(),
      aliases,
    );
  }

  async promote(name: string, version: number): Promise<ActionResponse> {
    const outcome = await promoteVersion(this.registry, name, version, { actor: this.actor });
    return {
      message: outcome.changed
        ? `v${version} is production${outcome.previous === undefined ? '' : ` (was v${outcome.previous})`}`
        : `v${version} is already production; nothing changed`,
      outcome,
    };
  }

  async rollback(name: string, to?: number): Promise<ActionResponse> {
    if (to !== undefined) {
      const outcome = await rollbackTo(this.registry, name, to, { actor: this.actor });
      return {
        message: outcome.changed
          ? `v${to} is production${outcome.previous === undefined ? '' : ` (v${outcome.previous} rolled back)`}`
          : `v${to} is already production; nothing changed`,
        outcome,
      };
    }
    const outcome = await rollbackLatest(this.registry, name, { actor: this.actor });
    return {
      message:
        outcome.action === 'dropped-candidate'
          ? `candidate v${outcome.version} dropped and marked rolled back`
          : `production reverted from v${outcome.version} to v${outcome.restored}`,
      outcome,
    };
  }

  async canary(name: string, weight: number): Promise<ActionResponse> {
    const outcome = await setCanaryWeight(this.registry, name, weight, { actor: this.actor });
    return {
      message: outcome.changed
        ? `candidate v${outcome.version} now takes ${fmtPercent(weight)} of the traffic (was ${fmtPercent(outcome.previousWeight)})`
        : `candidate v${outcome.version} already takes ${fmtPercent(weight)}; nothing changed`,
      outcome,
    };
  }

  /** Samples go up first, as `maas push` sends them: ingest looks for them beside the model. */
  async putSamples(name: string, file: string, text: string): Promise<{ key: string }> {
    validateModelName(name);
    const key = keys.samplesFor(keys.incomingModel(name, checkFileName(file)));
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ConsoleRequestError(
        'the samples file is not JSON: send a JSON array of Open Inference Protocol V2 request bodies',
      );
    }
    if (!Array.isArray(parsed) || parsed.length === 0) {
      throw new ConsoleRequestError(
        'the samples file must be a non-empty JSON array of Open Inference Protocol V2 request bodies',
      );
    }
    await this.registry.store.put(key, text, { contentType: 'application/json' });
    return { key };
  }

  async putModel(
    name: string,
    file: string,
    body: Readable,
    metadata: Record<string, string>,
  ): Promise<UploadResponse> {
    validateModelName(name);
    const key = keys.incomingModel(name, checkFileName(file));
    // only records written after this point answer this upload (see `maas push`)
    const latest = await this.registry.latestHistoryKey(name).catch((err: unknown) => {
      if (err instanceof ModelNotFoundError) return undefined;
      throw err;
    });
    const since = this.clock() - 30_000;
    await new Upload({
      client: this.client,
      params: {
        Bucket: this.target.bucket,
        Key: key,
        Body: body,
        ContentType: 'application/octet-stream',
        Metadata: metadata,
      },
      partSize: PART_SIZE,
      queueSize: 4,
      leavePartsOnError: false,
    }).done();
    // the stored object says what arrived: counting on the stream would race the upload's reader
    const head = await this.registry.store.head(key);
    return {
      model: name,
      key,
      etag: normalizeEtag(head.etag),
      bytes: head.size,
      ...(latest === undefined ? { sinceMs: since } : { afterKey: latest }),
    };
  }

  async outcome(
    name: string,
    upload: { sourceKey: string; etag: string },
    after: { afterKey?: string; sinceMs?: number },
  ): Promise<OutcomeResponse> {
    validateModelName(name);
    const outcome = await this.registry.findUploadOutcome(name, upload, {
      ...(after.afterKey === undefined ? {} : { afterKey: after.afterKey }),
      ...(after.sinceMs === undefined ? {} : { sinceMs: after.sinceMs }),
    });
    return outcome === undefined ? {} : { outcome };
  }

  /**
   * A valid request for a version: the first sample ingest warmed it up on, when that file is
   * still beside its upload and fits the signature; else one made from the signature.
   */
  async example(name: string, version?: number): Promise<ExampleResponse> {
    validateModelName(name);
    let chosen = version;
    if (chosen === undefined) {
      const aliases = (await this.registry.getAliases(name))?.aliases;
      chosen = aliases?.production ?? (await this.registry.listVersions(name)).at(-1);
    }
    if (chosen === undefined) {
      throw new ConsoleRequestError(
        `model "${name}" has no registered version to send a request to`,
      );
    }
    const manifest = await this.registry.getManifest(name, chosen);
    const sample = await this.registry.store
      .get(keys.samplesFor(manifest.source.key))
      .then((object) => JSON.parse(new TextDecoder().decode(object?.body)) as unknown)
      .catch(() => undefined);
    const first = Array.isArray(sample) ? (sample[0] as unknown) : undefined;
    if (fitsSignature(first, manifest)) {
      return { version: chosen, body: JSON.stringify(first, null, 2), from: 'samples' };
    }
    return {
      version: chosen,
      body: JSON.stringify(exampleRequest(manifest), null, 2),
      from: 'signature',
    };
  }

  /** A V2 request through the HTTP API (SigV4-signed for a deployed stack), timed here. */
  infer(name: string, version: number | undefined, body: string): Promise<InferResponse> {
    return this.send(name, version, body, 'infer');
  }

  /** The same request to the version's `/explain` route: attributions instead of outputs. */
  explain(name: string, version: number | undefined, body: string): Promise<InferResponse> {
    return this.send(name, version, body, 'explain');
  }

  private async send(
    name: string,
    version: number | undefined,
    body: string,
    action: 'infer' | 'explain',
  ): Promise<InferResponse> {
    validateModelName(name);
    const path = `/v2/models/${encodeURIComponent(name)}${version === undefined ? '' : `/versions/${version}`}/${action}`;
    const started = performance.now();
    const response = await callApi(this.target, {
      method: 'POST',
      path,
      body,
      contentType: 'application/json',
    });
    const latencyMs = performance.now() - started;
    const text = new TextDecoder().decode(response.body);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    const answered = response.headers.get('x-maas-model-version');
    const variant = response.headers.get('x-maas-variant');
    return {
      status: response.status,
      latencyMs,
      ...(answered === null ? {} : { version: answered }),
      ...(variant === null ? {} : { variant }),
      body: parsed,
    };
  }

  private async lastRecord(name: string): Promise<HistoryRecord | undefined> {
    const key = await this.registry.latestHistoryKey(name).catch(() => undefined);
    if (key === undefined) return undefined;
    const object = await this.registry.store.get(key);
    try {
      return JSON.parse(new TextDecoder().decode(object?.body)) as HistoryRecord;
    } catch {
      return undefined;
    }
  }
}

/** the sample's inputs are the signature's, by name */
function fitsSignature(sample: unknown, manifest: Manifest): boolean {
  if (typeof sample !== 'object' || sample === null) return false;
  const inputs = (sample as { inputs?: unknown }).inputs;
  if (!Array.isArray(inputs) || inputs.length !== manifest.inputs.length) return false;
  const names = new Set(inputs.map((i) => (i as { name?: unknown }).name));
  return manifest.inputs.every((spec) => names.has(spec.name));
}

/** Values every model accepts for its datatype: small positive numbers, false, a short text. */
export function exampleRequest(manifest: Manifest): { inputs: unknown[] } {
  return {
    inputs: manifest.inputs.map((spec) => {
      const shape = spec.shape.map((d) => (d < 0 ? 1 : d));
      const count = shape.reduce((a, b) => a * b, 1);
      const value = (i: number): unknown => {
        if (spec.datatype === 'BOOL') return false;
        if (spec.datatype === 'BYTES') return 'example';
        if (spec.datatype.startsWith('FP')) return Math.round(((i % 7) + 1) * 10) / 100;
        return 1;
      };
      return {
        name: spec.name,
        datatype: spec.datatype,
        shape,
        data: Array.from({ length: Math.min(count, 100_000) }, (_, i) => value(i)),
      };
    }),
  };
}

const fmtPercent = (weight: number): string => `${Math.round(weight * 1000) / 10} %`;

function checkFileName(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? '';
  if (!base.endsWith(MODEL_SUFFIX) || base.length <= MODEL_SUFFIX.length || base.length > 200) {
    throw new ConsoleRequestError(
      `${JSON.stringify(file)} is not a .onnx file name: upload an ONNX model file (name.onnx)`,
    );
  }
  if (!/^[A-Za-z0-9._-]+$/.test(base)) {
    throw new ConsoleRequestError(
      `${JSON.stringify(base)} has characters an upload key cannot carry: use letters, digits, '.', '_' and '-'`,
    );
  }
  return base;
}

export function labelsOf(aliases: Aliases | undefined, version: number): string[] {
  if (aliases === undefined) return [];
  const labels: string[] = [];
  if (aliases.production === version) labels.push('production');
  if (aliases.candidate?.version === version) labels.push('candidate');
  if (aliases.knownGood?.includes(version)) labels.push('known-good');
  if (aliases.rolledBack?.includes(version)) labels.push('rolled back');
  return labels;
}

const sparkOf = (figures: MetricsResponse): number[] => {
  const length = Math.max(0, ...figures.versions.map((s) => s.t.length));
  return Array.from({ length }, (_, i) =>
    figures.versions.reduce((total, s) => total + (s.requests[i] ?? 0), 0),
  );
};

/**
 * One word for a model: breaching (a served version has breaching periods), rolled back (the
 * last thing that happened to it), canary baking, healthy; or no version (rejections only).
 */
export function statusOf(
  aliases: Aliases | undefined,
  last: HistoryRecord | undefined,
  figures: MetricsResponse,
): { status: ModelStatus; detail?: string } {
  const served = new Set<number>();
  if (aliases?.production !== undefined) served.add(aliases.production);
  if (aliases?.candidate !== undefined) served.add(aliases.candidate.version);
  for (const health of figures.health) {
    if (!served.has(health.version)) continue;
    const bad = health.rules.filter((r) => r.breaching > 0);
    if (bad.length > 0) {
      return {
        status: 'breaching',
        detail: `v${health.version}: ${bad
          .map(
            (r) =>
              `${r.rule} ${r.breaching} of ${r.evaluationPeriods} periods (ALARM at ${r.datapointsToAlarm})`,
          )
          .join(', ')}`,
      };
    }
  }
  if (last?.event === 'rolled-back') {
    return {
      status: 'rolled back',
      detail: `v${last.version ?? '?'}: ${last.reason ?? 'rolled back'}`,
    };
  }
  if (aliases?.candidate !== undefined) {
    return {
      status: 'canary baking',
      detail: `v${aliases.candidate.version} at ${fmtPercent(aliases.candidate.weight)} until ${aliases.candidate.bakeUntil}`,
    };
  }
  if (aliases?.production === undefined) {
    return {
      status: 'no version',
      ...(last?.event === 'rejected'
        ? { detail: `last upload rejected: ${last.reason ?? 'no reason recorded'}` }
        : {}),
    };
  }
  return { status: 'healthy' };
}
