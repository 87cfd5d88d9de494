import type { MaasError } from '../errors/index.ts';
import {
  ModelRejectedError,
  type ModelSignature,
  type TensorSpec,
  type ValidationLimits,
  validateModel,
} from '../onnx/index.ts';
import {
  type GateOptions,
  type GateResult,
  type QuantizationReport,
  type QuantizeOptions,
  quantizeModel,
} from '../quantize/index.ts';
import {
  type AliasOutcome,
  type AliasPolicy,
  aliasOutcome,
  type HistoryRecord,
  type InputLimits,
  isValidModelName,
  keys,
  type Manifest,
  parseIncomingKey,
  placeVersion,
  type Registry,
  type ServedVariant,
  sha256Hex,
  type UploadRef,
  uploadDetails,
} from '../registry/index.ts';
import type { SessionSettings } from '../runtime/index.ts';
import {
  normalizeEtag,
  ObjectNotFoundError,
  type ObjectStore,
  ObjectTooLargeError,
  PreconditionFailedError,
  type StoredObject,
} from '../storage/index.ts';
import { fmtBytes } from '../util/index.ts';
import { sampleMeans } from './baseline.ts';
import { chooseInt8, type Quantized } from './choose.ts';
import { acquireClaim, type ClaimHandle, type ClaimResult } from './claim.ts';
import { IngestInProgressError, UploadRejectedError } from './errors.ts';
import { describeUpload } from './identity.ts';
import {
  collectingChunks,
  type ModelFile,
  type ModelSource,
  readModel,
  releaseMemory,
  runtimeMessage,
  WorkDir,
} from './model-file.ts';
import { describeAccuracy, parseUploadOptions, type UploadOptions } from './options.ts';
import { type PreOptimized, preOptimize } from './preoptimize.ts';
import { decodeSidecar, type Feeds, type SampleSet, synthesizeSamples } from './samples.ts';
import type { IngestSettings } from './settings.ts';
import { type WarmupReport, warmUp } from './trial.ts';

/** The progress log ingest writes; Powertools' Logger fits it as it is. */
export interface IngestLogger {
  debug(message: string, ...attributes: Record<string, unknown>[]): void;
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
  error(message: string, ...attributes: Record<string, unknown>[]): void;
}

export interface IngestDeps {
  /** over the bucket holding both `incoming/` and `registry/` */
  registry: Registry;
  settings: IngestSettings;
  /** validation caps over `DEFAULT_VALIDATION_LIMITS`; `maxBytes` is `settings.maxModelBytes` */
  validationLimits?: Partial<Omit<ValidationLimits, 'maxBytes'>>;
  quantizeOptions?: QuantizeOptions;
  /** try static int8 (calibrated on the samples) besides dynamic. @default true */
  staticQuantization?: boolean;
  /** store the served variant pre-optimized when it loads faster (preoptimize.ts). @default true */
  preOptimize?: boolean;
  /**
   * deliveries of one upload before an unexpected failure is recorded as a rejection: Lambda
   * delivers an asynchronous event at most three times. @default 3
   */
  maxAttempts?: number;
  /** the execution environment the claims name (tests stand in for another). @default per process */
  instanceId?: string;
  clock?: () => Date;
  logger?: IngestLogger;
}

export interface UploadEvent {
  /** the object key, decoded */
  bucketKey: string;
  /** the ETag the event carries (bare or quoted); read from the object when absent */
  etag?: string;
  /** when this invocation is stopped (Lambda's deadline). @default 15 minutes from now */
  deadline?: Date;
}

export type IngestResult =
  | { status: 'ignored'; key: string; reason: string }
  | {
      status: 'registered';
      key: string;
      etag: string;
      model: string;
      version: number;
      served: ServedVariant;
      alias: AliasOutcome;
    }
  | { status: 'rejected'; key: string; etag: string; model: string; code: string; reason: string }
  /** this upload already had its outcome: nothing was changed */
  | { status: 'duplicate'; key: string; etag: string; model: string; event: string };

const DEFAULT_DEADLINE_MS = 15 * 60_000;
const LARGE_READ_BYTES = 16 * 1024 * 1024;
const ACTOR = 'ingest';

const silent: IngestLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** What survives from the trial to the registration. */
interface Candidate {
  /** the upload, as downloaded and validated */
  fp32: ModelFile;
  signature: ModelSignature;
  options: UploadOptions;
  warmup: WarmupReport;
  samples: SampleSet['source'];
  inputLimits: InputLimits | undefined;
  /** recorded only for the uploader's own samples: synthesized ones mean nothing */
  sampleMeans?: Manifest['sampleMeans'];
  int8?: ModelSource;
  quantization: QuantizationReport;
  served: ServedVariant;
  /** the first sample, for the pre-optimized graph's check */
  firstSample?: Feeds;
  optimized?: Omit<PreOptimized, 'bytes'> & { file: ModelFile };
}

/**
 * Ingests one upload of `incoming/<model>/<file>.onnx`: size cap from HEAD, download, sha256,
 * validation, load and warm-up in onnxruntime, int8 quantization behind the accuracy/latency gate,
 * then registration (variants, manifest last, aliases by policy, a `registered` history record).
 * Any problem with the upload ends as one `rejected` history record and nothing else; storage
 * failures are thrown for the trigger to retry, and a retry resumes with the same version.
 */
export async function ingestUpload(event: UploadEvent, deps: IngestDeps): Promise<IngestResult> {
  const log = deps.logger ?? silent;
  const clock = deps.clock ?? (() => new Date());
  const store = deps.registry.store;
  const key = event.bucketKey;
  const parsed = parseIncomingKey(key);
  if (parsed?.kind !== 'model') {
    const reason =
      parsed?.kind === 'samples'
        ? 'a samples sidecar is read when its .onnx arrives, not on its own'
        : 'only incoming/<model>/<file>.onnx is ingested';
    log.info('ingest: ignored', { key, reason });
    return { status: 'ignored', key, reason };
  }
  const { model } = parsed;
  if (!isValidModelName(model)) {
    // Nothing can be recorded under an invalid name; `maas push` refuses such names up front.
    const reason = `"${model}" is not a valid model name (a-z, 0-9, '.', '_', '-', 1 to 63 characters)`;
    log.error('ingest: ignored', { key, reason });
    return { status: 'ignored', key, reason };
  }
  let current: UploadRef;
  try {
    current = await describeUpload(store, key);
  } catch (err) {
    if (!(err instanceof ObjectNotFoundError)) throw err;
    if (event.etag === undefined) {
      log.warn('ingest: ignored', { key, reason: 'the object is gone' });
      return { status: 'ignored', key, reason: 'the object is gone' };
    }
    current = { sourceKey: key, etag: normalizeEtag(event.etag) };
  }
  const etag = event.etag === undefined ? current.etag : normalizeEtag(event.etag);
  // The samples and options are those stored with these bytes; an upload already replaced keeps
  // only its key and ETag, and is rejected as superseded below.
  const upload: UploadRef = current.etag === etag ? current : { sourceKey: key, etag };
  const now = clock();
  const deadline = event.deadline ?? new Date(now.getTime() + DEFAULT_DEADLINE_MS);
  const claimed = await acquireClaim(store, model, upload, now, deadline, deps.instanceId);
  if (claimed.kind === 'done') {
    log.info('ingest: duplicate delivery, nothing to do', { key, etag, ...claimed.claim.outcome });
    return {
      status: 'duplicate',
      key,
      etag,
      model,
      event: claimed.claim.outcome?.event ?? 'unknown',
    };
  }
  if (claimed.kind === 'busy') throw new IngestInProgressError(key, etag, claimed.until);
  const { handle } = claimed;
  try {
    handle.startHeartbeat(clock, (err) =>
      log.warn('ingest: could not renew the claim lease', { key, error: runtimeMessage(err) }),
    );
    return await run({ deps, log, clock, store, model, upload, handle }, claimed);
  } finally {
    handle.close();
  }
}

async function run(
  ctx: Context,
  claimed: Exclude<ClaimResult, { kind: 'done' | 'busy' }>,
): Promise<IngestResult> {
  const { deps, log, model, upload, handle } = ctx;
  const { sourceKey: key, etag } = upload;
  log.info('ingest: started', { key, etag, attempt: handle.claim.attempt, claim: claimed.kind });
  if (claimed.kind === 'abandoned') {
    log.warn('ingest: taking over a claim its holder left running', {
      key,
      etag,
      previous: claimed.previous,
      returned: claimed.returned,
    });
  }
  try {
    if (handle.claim.attempt > 1) {
      // An earlier attempt may have written the outcome and stopped before closing the claim.
      const earlier = await deps.registry.findUploadOutcome(model, upload);
      if (earlier !== undefined) {
        const event = earlier.event === 'registered' ? 'registered' : 'rejected';
        await handle.update({
          state: 'done',
          outcome: {
            event,
            ...(earlier.version === undefined ? {} : { version: earlier.version }),
          },
        });
        return { status: 'duplicate', key, etag, model, event };
      }
    }
    const reserved = handle.claim.version;
    if (reserved !== undefined && (await hasManifest(deps.registry, model, reserved))) {
      // The version was committed before an earlier attempt stopped: finish what it started.
      return await finish(ctx, await deps.registry.getManifest(model, reserved));
    }
    if (claimed.kind === 'expired') {
      throw new UploadRejectedError(
        'IngestTimedOut',
        `The previous attempt to ingest this upload ran until its deadline without finishing ` +
          `(started ${claimed.previous.startedAt}). Upload a smaller or faster model.`,
      );
    }
    const attempts = deps.maxAttempts ?? 3;
    if (claimed.kind === 'abandoned' && !claimed.returned && handle.claim.attempt >= attempts) {
      // Holders that vanish mid-run (killed for memory, most often) would vanish again on this
      // last delivery, and then the upload would have no outcome at all: record one instead.
      throw new UploadRejectedError(
        'IngestFailed',
        `The previous ${handle.claim.attempt - 1} attempts to ingest this upload stopped without ` +
          'finishing or reporting why (out of memory, a crash, or the model store unreachable). ' +
          'Upload it again; if it fails again, upload a smaller model.',
      );
    }
    const workDir = await WorkDir.create();
    try {
      const candidate = await evaluate({ ...ctx, workDir });
      // the int8 variants not served leave room on disk for the pre-optimized graph's two files
      await workDir.keepOnly([candidate.fp32, candidate.int8]);
      if (deps.preOptimize !== false) await addOptimized({ ...ctx, workDir }, candidate);
      return await register(ctx, candidate);
    } finally {
      await workDir.dispose();
    }
  } catch (err) {
    return await settleFailure(ctx, err);
  }
}

interface Context {
  deps: IngestDeps;
  log: IngestLogger;
  clock: () => Date;
  store: ObjectStore;
  model: string;
  upload: UploadRef;
  handle: ClaimHandle;
}

const hasManifest = async (registry: Registry, model: string, version: number) => {
  try {
    await registry.store.head(keys.manifest(model, version));
    return true;
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return false;
    throw err;
  }
};

const isRejection = (err: unknown): err is MaasError =>
  err instanceof UploadRejectedError || err instanceof ModelRejectedError;

async function settleFailure(ctx: Context, err: unknown): Promise<IngestResult> {
  const { deps, log, handle, upload, model } = ctx;
  const attempts = deps.maxAttempts ?? 3;
  let failure = err;
  try {
    if (isRejection(err)) return await reject(ctx, err.code, err.message, err.details);
    if (handle.claim.attempt >= attempts) {
      log.error('ingest: failed on its last attempt', { ...upload, error: runtimeMessage(err) });
      return await reject(
        ctx,
        'IngestFailed',
        `Ingest failed ${attempts} times on this upload (last: ${runtimeMessage(err)}). Upload it ` +
          'again; if it keeps failing, the operators have the ingest logs.',
        {},
      );
    }
  } catch (recordError) {
    // The rejection could not be written (storage down): the retry decides again.
    failure = recordError;
  }
  log.warn('ingest: failed, leaving it for the retry', {
    ...upload,
    model,
    error: runtimeMessage(failure),
  });
  try {
    await handle.update({ state: 'released' });
  } catch (releaseError) {
    log.warn('ingest: could not release the claim', { error: runtimeMessage(releaseError) });
  }
  throw failure;
}

async function reject(
  ctx: Context,
  code: string,
  reason: string,
  details: Readonly<Record<string, unknown>>,
): Promise<IngestResult> {
  const { deps, log, handle, upload, model } = ctx;
  await deps.registry.recordRejection({ model, ...upload, code, reason, details: { ...details } });
  await handle.update({ state: 'done', outcome: { event: 'rejected', code } });
  log.warn('ingest: rejected', { ...upload, model, code, reason });
  return { status: 'rejected', key: upload.sourceKey, etag: upload.etag, model, code, reason };
}

/** The upload's bytes, exactly the object its HEAD sized, and its options. */
async function download(ctx: Context): Promise<{ bytes: Uint8Array; options: UploadOptions }> {
  const { deps, log, store, upload } = ctx;
  const { settings } = deps;
  const head = await headUpload(store, upload);
  if (head.size > settings.maxModelBytes) {
    throw new UploadRejectedError(
      'TooLarge',
      `The upload is ${fmtBytes(head.size)}, over the ${fmtBytes(settings.maxModelBytes)} limit. ` +
        'Send a smaller model (quantize or prune it before upload).',
      { details: { bytes: head.size, limit: settings.maxModelBytes } },
    );
  }
  const options = parseUploadOptions(head.metadata);
  const object = await readSized(store, upload, head.size);
  if (object === undefined || normalizeEtag(object.etag) !== upload.etag) {
    throw superseded(upload, object?.etag);
  }
  const bytes = object.body;
  log.info('ingest: downloaded', {
    key: upload.sourceKey,
    bytes: bytes.byteLength,
    sha256: sha256Hex(bytes),
    options,
  });
  return { bytes, options };
}

/** The int8 gate's options: the upload's `maas-accuracy` over the configured minimum. */
const gateOptionsFor = (options: UploadOptions, settings: IngestSettings): GateOptions => ({
  minCosine:
    options.accuracy?.metric === 'cosine' && options.accuracy.min !== undefined
      ? options.accuracy.min
      : settings.minCosine,
  objective: settings.objective,
  ...(options.accuracy?.metric === 'top1'
    ? {
        accuracy: 'top1' as const,
        ...(options.accuracy.min === undefined ? {} : { minTop1: options.accuracy.min }),
      }
    : {}),
});

type Evaluated = Omit<Candidate, 'served' | 'quantization' | 'int8' | 'optimized'>;

/**
 * The upload downloaded, validated and written to the work dir. Its bytes go out of scope when
 * this returns: every later step reads the file again or hands its path to onnxruntime.
 */
async function fetchUpload(ctx: Context & { workDir: WorkDir }) {
  const { deps, log, upload, workDir } = ctx;
  const { bytes, options } = await download(ctx);
  const { signature } = validateModel(bytes, {
    ...deps.validationLimits,
    maxBytes: deps.settings.maxModelBytes,
  });
  log.info('ingest: validated', {
    key: upload.sourceKey,
    opsets: signature.opsetImports,
    nodes: signature.nodeCount,
    parameters: signature.parameterCount,
  });
  return { file: await workDir.write('model.onnx', bytes), options, signature };
}

/** Everything up to the decision of what to serve; writes nothing under `registry/` but the claim. */
async function evaluate(ctx: Context & { workDir: WorkDir }): Promise<Candidate> {
  const { deps, log, store, upload } = ctx;
  const { settings } = deps;
  const key = upload.sourceKey;
  const { file, options, signature } = await fetchUpload(ctx);
  releaseMemory();

  const samples = await loadSamples(store, key, signature, settings);
  const session = { intraOpThreads: settings.intraOpThreads };
  const warmup = await warmUp(file, samples.feeds, settings, session, signature.outputs).catch(
    (err: unknown) => {
      throw samples.source === 'synthesized' ? onSynthesizedInputs(err, key, signature) : err;
    },
  );
  log.info('ingest: warmed up', { key, ...warmup, source: samples.source });

  /** what every outcome carries; `served` and the quantization report are the decision */
  const evaluated: Evaluated = {
    fp32: file,
    signature,
    options,
    warmup,
    samples: samples.source,
    ...(samples.feeds[0] === undefined ? {} : { firstSample: samples.feeds[0] }),
    inputLimits: learnInputLimits(options, samples),
    ...(samples.source === 'sidecar'
      ? { sampleMeans: sampleMeans(samples.feeds, signature.inputs) }
      : {}),
  };
  if (!options.quantize) {
    const decision = 'fp32 served: quantization turned off by the upload (maas-quantize=off)';
    return {
      ...evaluated,
      served: 'fp32',
      quantization: {
        scheme: 'none',
        status: 'not-applied',
        reason: 'maas-quantize=off on the upload',
        nodes: [],
        nodesQuantized: 0,
        nodesSkipped: 0,
        decision,
      },
    };
  }
  return chooseServed(ctx, evaluated, samples, session);
}

/**
 * Quantizes (dynamic and static int8), lets the gate judge each against fp32, and serves the
 * better accepted variant once it passes the same checked warm-up as the upload; else fp32.
 */
async function chooseServed(
  ctx: Context & { workDir: WorkDir },
  evaluated: Evaluated,
  samples: SampleSet,
  session: SessionSettings,
): Promise<Candidate> {
  const { deps, log, upload } = ctx;
  const { settings } = deps;
  const { fp32, options, signature } = evaluated;
  const key = upload.sourceKey;
  const accuracyTest = describeAccuracy(
    options.accuracy ?? { metric: 'cosine' },
    settings.minCosine,
  );
  const choice = await chooseInt8({
    fp32,
    samples,
    gate: gateOptionsFor(options, settings),
    session,
    dynamic: () => quantizeVariant(fp32, deps, ctx.workDir),
    mixedDynamic: (signedShare) =>
      quantizeVariant(fp32, deps, ctx.workDir, { name: 'mixed.onnx', signedShare }),
    check: (variant) => variantProblem(variant, deps),
    staticScheme: deps.staticQuantization !== false,
    workDir: ctx.workDir,
    log: (message, attributes) => log.info(message, { key, ...attributes }),
  });
  const { gate, report } = choice;
  log.info('ingest: quantized', {
    key,
    scheme: report.scheme,
    status: report.status,
    reason: report.reason,
    quantized: report.nodesQuantized,
    skipped: report.nodesSkipped,
    ms: report.quantizeMs,
    alternatives: choice.alternatives,
  });
  const extra = {
    accuracyTest,
    ...(choice.alternatives.length > 0 ? { alternatives: choice.alternatives } : {}),
  };
  if (gate === undefined) {
    return {
      ...evaluated,
      served: 'fp32',
      quantization: {
        ...report,
        ...extra,
        decision: `fp32 served: ${report.reason ?? 'not quantized'}`,
      },
    };
  }
  log.info('ingest: gate', {
    key,
    accept: gate.accept,
    decision: gate.decision,
    cosine: gate.cosine,
    sizeRatio: gate.sizeRatio,
    latencyRatio: gate.latencyRatio,
  });
  const refusal =
    choice.int8 !== undefined
      ? await int8Refusal(choice.int8, samples.feeds, settings, session, signature)
      : undefined;
  const accepted = choice.int8 !== undefined && refusal === undefined;
  if (refusal !== undefined) log.warn('ingest: int8 variant refused', { key, reason: refusal });
  const verdict: GateResult =
    refusal === undefined ? gate : { ...gate, accept: false, decision: `fp32 served: ${refusal}` };
  return {
    ...evaluated,
    served: accepted ? 'int8' : 'fp32',
    ...(accepted ? { int8: choice.int8 } : {}),
    quantization: { ...gatedReport(report, verdict), ...extra },
  };
}

/** Stores the served variant pre-optimized when that measurably shortens a cold start. */
async function addOptimized(
  ctx: Context & { workDir: WorkDir },
  candidate: Candidate,
): Promise<void> {
  const { deps, log, upload } = ctx;
  const served = candidate.served === 'int8' ? candidate.int8 : candidate.fp32;
  if (served === undefined || candidate.firstSample === undefined) return;
  const result = await preOptimize(served, candidate.firstSample, {
    intraOpThreads: deps.settings.intraOpThreads,
  });
  if ('skipped' in result) {
    log.info('ingest: no pre-optimized graph', { key: upload.sourceKey, reason: result.skipped });
    return;
  }
  log.info('ingest: pre-optimized', {
    key: upload.sourceKey,
    loadLevel: result.loadLevel,
    createMs: result.createMs,
    bytes: result.bytes.byteLength,
  });
  const { bytes, ...figures } = result;
  // kept on disk until it is written: the variants are read back one at a time before it
  candidate.optimized = { ...figures, file: await ctx.workDir.write('optimized.onnx', bytes) };
}

/**
 * Why the int8 variant the gate accepted must not be served, or `undefined`. The gate compares
 * int8 with fp32 on float outputs only; the variant predict would serve goes through the same
 * checked warm-up as the upload, so its every output matches the signature in the manifest. A
 * variant that fails it only means fp32 is served: the upload itself passed.
 */
async function int8Refusal(
  int8: ModelSource,
  feeds: SampleSet['feeds'],
  settings: IngestSettings,
  session: SessionSettings,
  signature: ModelSignature,
): Promise<string | undefined> {
  try {
    await warmUp(int8, feeds, settings, session, signature.outputs);
    return undefined;
  } catch (err) {
    if (!(err instanceof UploadRejectedError)) throw err;
    return `the int8 variant failed its warm-up (${err.code}): ${err.message}`;
  }
}

const superseded = (upload: UploadRef, current: string | undefined): UploadRejectedError =>
  new UploadRejectedError(
    'Superseded',
    `${upload.sourceKey} was replaced by a newer upload${current === undefined ? '' : ` (etag ${normalizeEtag(current)})`} ` +
      'before ingest read it; the newer upload is ingested on its own event.',
    { details: current === undefined ? {} : { currentEtag: normalizeEtag(current) } },
  );

/**
 * Exactly the object the HEAD sized: the same ETag (If-Match), and not a byte past its size. An
 * upload replaced in between by a larger one is never downloaded, only found superseded.
 */
async function readSized(store: ObjectStore, upload: UploadRef, size: number) {
  const sized = { ifMatch: upload.etag, maxBytes: size };
  try {
    return size >= LARGE_READ_BYTES && store.getLarge !== undefined
      ? await store.getLarge(upload.sourceKey, { ...sized, onChunk: collectingChunks() })
      : await store.get(upload.sourceKey, sized);
  } catch (err) {
    if (err instanceof PreconditionFailedError || err instanceof ObjectTooLargeError) {
      throw superseded(upload, undefined);
    }
    throw err;
  }
}

async function headUpload(store: ObjectStore, upload: UploadRef) {
  try {
    const head = await store.head(upload.sourceKey);
    if (normalizeEtag(head.etag) !== upload.etag) throw superseded(upload, head.etag);
    return head;
  } catch (err) {
    if (!(err instanceof ObjectNotFoundError)) throw err;
    throw new UploadRejectedError(
      'SourceGone',
      `${upload.sourceKey} was deleted before ingest could read it; upload it again.`,
    );
  }
}

/**
 * How much larger than its largest sample a request may be. The samples show what traffic looks
 * like; 64× lets an encoder sampled at [4, 24] take [12, 512] but not [64, 512], which took an
 * instance from 0.7 to 2.8 GB (docs/limits.md).
 */
export const INPUT_HEADROOM = 64;

/** The upload's `maas-max-elements`, else the largest sidecar sample × the headroom, else none. */
export const learnInputLimits = (
  options: Pick<UploadOptions, 'maxElements'>,
  samples: SampleSet,
): InputLimits | undefined => {
  if (options.maxElements === 'off') return undefined;
  if (options.maxElements !== undefined) {
    return { maxElements: options.maxElements, source: 'metadata' };
  }
  // inputs made up from the signature (dynamic dims 1) say nothing about real traffic
  if (samples.source !== 'sidecar') return undefined;
  const largest = Math.max(
    ...samples.feeds.map((feeds) =>
      Object.values(feeds).reduce((sum, tensor) => sum + tensor.size, 0),
    ),
  );
  return { maxElements: Math.max(1, largest) * INPUT_HEADROOM, source: 'samples' };
};

const specText = (spec: TensorSpec): string =>
  `${spec.name} ${spec.datatype} [${spec.shape.map((d, i) => (d < 0 ? (spec.dimNames?.[i] ?? '?') : d)).join(', ')}]`;

/**
 * A warm-up failure on inputs ingest made up itself: "sample #1" would point at a file the user
 * never sent. Say the inputs were synthesized, show the signature they were made from, and how to
 * send real ones.
 */
function onSynthesizedInputs(err: unknown, key: string, signature: ModelSignature): unknown {
  // the load's failures are the file's, whatever the inputs: samples would not change them
  if (!(err instanceof UploadRejectedError) || err.code.startsWith('Load')) return err;
  const file = key.split('/').at(-1) ?? 'model.onnx';
  const message = err.message.replace(
    /on sample #(\d+)/,
    'on inputs synthesized from its signature (no samples were uploaded: dynamic dims 1, floats in [-1, 1), integers 1)',
  );
  return new UploadRejectedError(
    err.code,
    `${message} The model's inputs: ${signature.inputs.map(specText).join('; ')}. ` +
      `Push real inputs with --samples (\`maas inspect ${file} --template ${file.replace(/\.onnx$/, '.samples.json')}\` writes a template to fill in).`,
    { cause: err.cause, details: { ...err.details, samples: 'synthesized' } },
  );
}

async function loadSamples(
  store: ObjectStore,
  modelKey: string,
  signature: ModelSignature,
  settings: IngestSettings,
): Promise<SampleSet> {
  const samplesKey = keys.samplesFor(modelKey);
  let head: Awaited<ReturnType<ObjectStore['head']>>;
  try {
    head = await store.head(samplesKey);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return synthesizeSamples(signature.inputs);
    throw err;
  }
  if (head.size > settings.maxSamplesBytes) {
    throw new UploadRejectedError(
      'InvalidSamples',
      `The samples file ${samplesKey} is ${fmtBytes(head.size)}, over the ` +
        `${fmtBytes(settings.maxSamplesBytes)} limit. Upload fewer or smaller sample requests.`,
    );
  }
  let object: StoredObject | undefined;
  try {
    object = await store.get(samplesKey, { ifMatch: head.etag, maxBytes: head.size });
  } catch (err) {
    if (!(err instanceof PreconditionFailedError || err instanceof ObjectTooLargeError)) throw err;
    throw new UploadRejectedError(
      'InvalidSamples',
      `The samples file ${samplesKey} changed while ingest read it. Upload the samples, then the ` +
        '.onnx file, one after the other.',
    );
  }
  if (object === undefined) return synthesizeSamples(signature.inputs);
  return decodeSidecar(samplesKey, object.body, signature, {
    maxSamples: settings.maxSamples,
    maxElements: settings.maxSampleElements,
  });
}

/** Why a quantized variant must not be served: it must pass the same validation as an upload. */
function variantProblem(variant: Uint8Array, deps: IngestDeps): string | undefined {
  try {
    validateModel(variant, { ...deps.validationLimits, maxBytes: deps.settings.maxModelBytes });
    return undefined;
  } catch (err) {
    return `the int8 variant failed validation: ${runtimeMessage(err)}`;
  }
}

/**
 * The dynamic int8 variant of the model in `fp32`, written to the work dir, or why there is none;
 * a quantizer failure only means fp32 is served. The variant is validated from its file once the
 * float model and the decoded variant are gone.
 */
async function quantizeVariant(
  fp32: ModelSource,
  deps: IngestDeps,
  workDir: WorkDir,
  mixed?: { name: string; signedShare: number },
): Promise<Quantized> {
  const notApplied = (reason: string): QuantizationReport => ({
    scheme: 'dynamic int8',
    status: 'not-applied',
    reason,
    nodes: [],
    nodesQuantized: 0,
    nodesSkipped: 0,
  });
  const written = await quantizeInto(fp32, deps, workDir, mixed).catch(
    (err: unknown): Quantized => ({
      report: notApplied(`the quantizer failed: ${runtimeMessage(err)}`),
    }),
  );
  if (written.variant === undefined) return written;
  releaseMemory();
  const problem = await checkFile(written.variant, deps);
  if (problem === undefined) return written;
  return { report: { ...written.report, ...notApplied(problem) } };
}

/** In a frame of its own: the float model and the decoded variant are dropped when it returns. */
async function quantizeInto(
  fp32: ModelSource,
  deps: IngestDeps,
  workDir: WorkDir,
  mixed?: { name: string; signedShare: number },
): Promise<Quantized> {
  const options = mixed
    ? { ...deps.quantizeOptions, signedShare: mixed.signedShare }
    : deps.quantizeOptions;
  const result = quantizeModel(await readModel(fp32), options);
  if (result.report.status !== 'applied' || result.model === undefined) {
    return { report: result.report };
  }
  const name = mixed?.name ?? 'dynamic.onnx';
  return { report: result.report, variant: await workDir.writeModel(name, result.model) };
}

const checkFile = async (variant: ModelSource, deps: IngestDeps) =>
  variantProblem(await readModel(variant), deps);

/** The quantizer's report with the gate's figures; `status` says whether int8 is written. */
function gatedReport(report: QuantizationReport, gate: GateResult): QuantizationReport {
  const finite = (value: number) => (Number.isFinite(value) ? value : undefined);
  const accuracy =
    Number.isFinite(gate.cosine) && Number.isFinite(gate.maxAbsError)
      ? {
          cosine: gate.cosine,
          maxAbsError: gate.maxAbsError,
          ...(gate.top1Agreement === undefined ? {} : { top1Agreement: gate.top1Agreement }),
        }
      : undefined;
  const latencyRatio = finite(gate.latencyRatio);
  const { reason: _quantizerReason, ...rest } = report;
  return {
    ...rest,
    // Only an accepted variant is written (docs/design.md: model.int8.onnx "when accepted"); the
    // figures of a refused one stay here, so the refusal can be checked.
    status: gate.accept ? 'applied' : 'not-applied',
    ...(gate.accept ? {} : { reason: gate.decision }),
    sizeRatio: gate.sizeRatio,
    ...(latencyRatio === undefined ? {} : { latencyRatio }),
    ...(accuracy === undefined ? {} : { accuracy }),
    decision: gate.decision,
  };
}

async function register(ctx: Context, candidate: Candidate): Promise<IngestResult> {
  const { deps, log, clock, model, upload, handle } = ctx;
  const { settings } = deps;
  const policy: AliasPolicy = {
    promote: candidate.options.promote,
    canaryWeight: candidate.options.canaryWeight ?? settings.canaryWeight,
    bakeMs: settings.bakeMinutes * 60_000,
  };
  // Reserved only after every check, so a rejected upload never takes a number. Until its
  // manifest exists a reserved version is not registered (listVersions skips it); a retry
  // reuses the number kept in the claim instead of reserving another.
  let version = handle.claim.version;
  if (version === undefined) {
    version = (await deps.registry.reserveVersion(model, upload)).version;
    await handle.update({ version, policy });
  }
  log.info('ingest: registering', { ...upload, model, version });
  // One variant in memory at a time, read back from the work dir for its write only (a value
  // awaited in this frame would stay referenced until it returns).
  const put = async (variant: ServedVariant, file: ModelSource) =>
    deps.registry.putVariant(model, version, variant, await readModel(file));
  const fp32 = await put('fp32', candidate.fp32);
  releaseMemory();
  const int8 = candidate.int8 === undefined ? undefined : await put('int8', candidate.int8);
  releaseMemory();
  const putOptimized = async (file: ModelSource) =>
    deps.registry.putOptimized(model, version, candidate.served, await readModel(file));
  const pre = candidate.optimized;
  const optimized =
    pre === undefined
      ? undefined
      : {
          ...(await putOptimized(pre.file)),
          of: candidate.served,
          runtime: pre.runtime,
          level: pre.level,
          loadLevel: pre.loadLevel,
          createMs: pre.createMs,
        };
  const { signature } = candidate;
  const manifest: Manifest = {
    model,
    version,
    served: candidate.served,
    variants: int8 === undefined ? { fp32 } : { fp32, int8 },
    source: { key: upload.sourceKey, etag: upload.etag },
    irVersion: signature.irVersion,
    opsetImports: signature.opsetImports,
    producer: signature.producer,
    inputs: signature.inputs,
    outputs: signature.outputs,
    signature: {
      opHistogram: signature.opHistogram,
      nodeCount: signature.nodeCount,
      parameterCount: signature.parameterCount,
    },
    quantization: candidate.quantization,
    ...(optimized === undefined ? {} : { optimized }),
    warmup: candidate.warmup,
    ...(candidate.inputLimits === undefined ? {} : { inputLimits: candidate.inputLimits }),
    ...(candidate.sampleMeans === undefined ? {} : { sampleMeans: candidate.sampleMeans }),
    createdAt: clock().toISOString(),
  };
  await deps.registry.commitManifest(manifest);
  return finish(ctx, manifest, { samples: candidate.samples });
}

/** After the commit point: aliases, audit records, the outcome. Safe to run again. */
async function finish(
  ctx: Context,
  manifest: Manifest,
  details: Record<string, unknown> = {},
): Promise<IngestResult> {
  const { deps, log, clock, model, upload, handle } = ctx;
  const { version } = manifest;
  const policy: AliasPolicy = handle.claim.policy ?? {
    promote: 'canary',
    canaryWeight: deps.settings.canaryWeight,
    bakeMs: deps.settings.bakeMinutes * 60_000,
  };
  const now = clock();
  const update = await deps.registry.updateAliases(model, (current) =>
    placeVersion(current, version, policy, now),
  );
  const alias = aliasOutcome(update.aliases, version);
  let at = clock();
  if (update.changed && alias !== 'none') {
    const candidate = update.aliases?.candidate;
    const record: HistoryRecord = {
      model,
      event: alias === 'production' ? 'promoted' : 'candidate',
      version,
      at: at.toISOString(),
      actor: ACTOR,
      reason:
        alias === 'production'
          ? policy.promote === 'now'
            ? 'uploaded with maas-promote=now'
            : 'first version of the model'
          : `canary at weight ${candidate?.weight ?? policy.canaryWeight} until ${candidate?.bakeUntil ?? ''}`,
      details: { ...uploadDetails(upload), promote: policy.promote },
    };
    await deps.registry.appendHistory(record);
    // History keys order by millisecond: the outcome must sort after the alias change it follows.
    at = new Date(Math.max(clock().getTime(), at.getTime() + 1));
  }
  const q = manifest.quantization;
  await deps.registry.appendHistory({
    model,
    event: 'registered',
    version,
    at: at.toISOString(),
    actor: ACTOR,
    reason: q?.decision ?? `${manifest.served} served`,
    details: {
      ...uploadDetails(upload),
      served: manifest.served,
      alias,
      ...(alias === 'candidate' && update.aliases?.candidate?.version === version
        ? { weight: update.aliases.candidate.weight }
        : {}),
      promote: policy.promote,
      sha256: manifest.variants.fp32.sha256,
      ...(q?.sizeRatio === undefined ? {} : { sizeRatio: q.sizeRatio }),
      ...(q?.latencyRatio === undefined ? {} : { latencyRatio: q.latencyRatio }),
      ...(q?.accuracy === undefined ? {} : { cosine: q.accuracy.cosine }),
      ...details,
    },
  });
  await handle.update({ state: 'done', outcome: { event: 'registered', version } });
  log.info('ingest: registered', { ...upload, model, version, served: manifest.served, alias });
  return {
    status: 'registered',
    key: upload.sourceKey,
    etag: upload.etag,
    model,
    version,
    served: manifest.served,
    alias,
  };
}
