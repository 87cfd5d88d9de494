import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Upload } from '@aws-sdk/lib-storage';
import cliProgress from 'cli-progress';
import { type Command, Option } from 'commander';
import { describeUpload } from '../../src/ingest/identity.ts';
import {
  type Aliases,
  type HistoryRecord,
  keys,
  MODEL_SUFFIX,
  type Registry,
  type UploadRef,
  validateModelName,
} from '../../src/registry/index.ts';
import type { CliContext } from '../context.ts';
import {
  CliUsageError,
  OutcomeTimeoutError,
  parsePositiveInteger,
  UploadRejectedError,
} from '../errors.ts';
import { formatBytes, printJson, printLine } from '../output.ts';
import { withContext } from '../run.ts';

interface PushOptions {
  model: string;
  samples?: string;
  quantize: boolean;
  promote?: 'now' | 'canary' | 'manual';
  canaryWeight?: number;
  wait: boolean;
  timeout: number;
}

/** Parts of a multipart upload; files up to one part go up in a single PUT. */
const PART_SIZE = 8 * 1024 * 1024;
const POLL_INTERVAL_MS = 1000;
/** for a model without history yet: records stamped this long before the push still count (clock skew) */
const CLOCK_SKEW_MS = 30_000;

function parseWeight(value: string): number {
  const weight = Number(value);
  if (value.trim() === '' || !Number.isFinite(weight) || weight < 0 || weight > 1) {
    throw new CliUsageError(
      `--canary-weight must be a number from 0 to 1, got ${JSON.stringify(value)}`,
    );
  }
  return weight;
}

async function readSamples(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CliUsageError(`cannot read --samples ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliUsageError(
      `--samples ${path} is not JSON: send a JSON array of Open Inference Protocol V2 request bodies`,
    );
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw new CliUsageError(
      `--samples ${path} must be a non-empty JSON array of Open Inference Protocol V2 request bodies`,
    );
  }
  return text;
}

async function uploadModel(
  context: CliContext,
  file: string,
  key: string,
  size: number,
  metadata: Record<string, string>,
): Promise<void> {
  const upload = new Upload({
    client: context.client,
    params: {
      Bucket: context.options.bucket,
      Key: key,
      Body: createReadStream(file),
      ContentType: 'application/octet-stream',
      Metadata: metadata,
    },
    partSize: PART_SIZE,
    queueSize: 4,
    leavePartsOnError: false,
  });
  const showProgress = !context.options.json && process.stderr.isTTY === true && size > PART_SIZE;
  const bar = showProgress
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: 'uploading [{bar}] {percentage}% {done}/{size}, eta {eta}s',
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const sizeText = formatBytes(size);
  bar?.start(size, 0, { done: formatBytes(0), size: sizeText });
  upload.on('httpUploadProgress', (progress) =>
    bar?.update(progress.loaded ?? 0, { done: formatBytes(progress.loaded ?? 0), size: sizeText }),
  );
  try {
    await upload.done();
  } finally {
    bar?.stop();
  }
}

async function waitForOutcome(
  registry: Registry,
  model: string,
  upload: UploadRef,
  after: { afterKey: string } | { sinceMs: number },
  timeoutSeconds: number,
): Promise<HistoryRecord> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const outcome = await registry.findUploadOutcome(model, upload, after);
    if (outcome !== undefined) return outcome;
    if (Date.now() >= deadline) throw new OutcomeTimeoutError(upload.sourceKey, timeoutSeconds);
    await sleep(POLL_INTERVAL_MS);
  }
}

async function push(file: string, opts: PushOptions, context: CliContext): Promise<void> {
  const model = validateModelName(opts.model);
  if (!file.endsWith(MODEL_SUFFIX)) {
    throw new CliUsageError(`${file} is not a .onnx file: push an ONNX model file`);
  }
  const size = await stat(file).then(
    (info) => info.size,
    (err: Error) => {
      throw new CliUsageError(`cannot read ${file}: ${err.message}`);
    },
  );
  const samples = opts.samples === undefined ? undefined : await readSamples(opts.samples);
  const key = keys.incomingModel(model, basename(file));
  const samplesKey = samples === undefined ? undefined : keys.samplesFor(key);
  const metadata: Record<string, string> = { 'maas-quantize': opts.quantize ? 'on' : 'off' };
  if (opts.promote !== undefined) metadata['maas-promote'] = opts.promote;
  if (opts.canaryWeight !== undefined) metadata['maas-canary-weight'] = String(opts.canaryWeight);

  // Only records written after this point can answer this upload: pushing the same bytes to
  // the same key again must not be answered by the previous push's record.
  const startedAt = Date.now();
  const latest = opts.wait ? await context.registry.latestHistoryKey(model) : undefined;
  const after =
    latest === undefined ? { sinceMs: Date.now() - CLOCK_SKEW_MS } : { afterKey: latest };
  // Samples go first: ingest starts on the .onnx upload and looks for them beside it.
  if (samples !== undefined && samplesKey !== undefined) {
    await context.store.put(samplesKey, samples, { contentType: 'application/json' });
  }
  await uploadModel(context, file, key, size, metadata);
  // The upload as ingest identifies it: bytes, samples and options. Pushed before unchanged, its
  // outcome is recorded already and ingest will not decide again: answer with that at once.
  const ref = await describeUpload(context.store, key);
  const { etag } = ref;
  const uploaded = { model, bucket: context.options.bucket, key, etag, bytes: size, samplesKey };
  if (!context.options.json) {
    printLine(
      `uploaded s3://${context.options.bucket}/${key} (${formatBytes(size)}, etag ${etag})`,
    );
  }
  if (!opts.wait) {
    if (context.options.json) printJson(uploaded);
    return;
  }
  const earlier = await context.registry.findUploadOutcome(model, ref);
  const already = earlier !== undefined && Date.parse(earlier.at) < startedAt;
  if (!context.options.json && !already) {
    process.stderr.write('waiting for ingest to register it...\n');
  }
  const outcome =
    earlier ?? (await waitForOutcome(context.registry, model, ref, after, opts.timeout));
  const aliases =
    outcome.event === 'registered'
      ? (await context.registry.getAliases(model))?.aliases
      : undefined;
  const role = outcome.version === undefined ? undefined : roleOf(aliases, outcome.version);
  if (context.options.json) printJson({ ...uploaded, already, role, outcome });
  if (outcome.event === 'rejected') {
    const code = outcome.details?.code;
    throw new UploadRejectedError(
      model,
      `${already ? `this file, samples and options were already rejected (${outcome.at}): ` : ''}${outcome.reason ?? 'no reason given'}`,
      typeof code === 'string' ? code : undefined,
    );
  }
  if (!context.options.json) {
    const served = outcome.details?.served;
    const version = outcome.version ?? '?';
    printLine(
      `${already ? 'already registered' : 'registered'} ${model} v${version}${typeof served === 'string' ? ` (serves ${served})` : ''}: ${role ?? 'state unknown'}; details: maas show ${model} ${outcome.version ?? ''}`.trimEnd(),
    );
    if (already) {
      printLine(
        'the same file, samples and options were pushed before: change one of them (e.g. --samples, --no-quantize) for a new evaluation',
      );
    }
    const figures = quantizationFigures(outcome.details ?? {});
    if (figures) printLine(`int8 vs fp32: ${figures}`);
    if (outcome.reason) printLine(`decision: ${outcome.reason}`);
  }
}

/** What a version is now: production, a candidate at its weight, or not routed (and why). */
export function roleOf(aliases: Aliases | undefined, version: number): string {
  if (aliases?.production === version) return 'production, serving all traffic';
  const candidate = aliases?.candidate;
  if (candidate?.version === version) {
    return `candidate at ${Math.round(candidate.weight * 1000) / 10} % of traffic until ${candidate.bakeUntil}, then production if its alarms stay OK`;
  }
  if (aliases?.rolledBack.includes(version)) return 'rolled back, not serving';
  return `not routed (promote it with \`maas promote ${aliases?.model ?? '<model>'} ${version}\`)`;
}

/** `size 0.255x, p50 latency 0.375x, cosine 0.99957` from the registered record's details. */
function quantizationFigures(details: Record<string, unknown>): string | undefined {
  const figure = (key: string, label: string, digits: number, suffix = ''): string[] => {
    const value = details[key];
    return typeof value === 'number' && Number.isFinite(value)
      ? [`${label} ${value.toFixed(digits)}${suffix}`]
      : [];
  };
  const parts = [
    ...figure('sizeRatio', 'size', 3, 'x'),
    ...figure('latencyRatio', 'p50 latency', 3, 'x'),
    ...figure('cosine', 'cosine', 5),
  ];
  return parts.length > 0 ? parts.join(', ') : undefined;
}

export function registerPush(program: Command): void {
  program
    .command('push')
    .argument('<file>', 'the .onnx model file')
    .requiredOption('--model <name>', 'model name (a-z, 0-9, . _ -)')
    .option('--samples <file>', 'sample requests: a JSON array of V2 inference request bodies')
    .option('--no-quantize', 'serve the model as uploaded, without an int8 variant')
    .addOption(
      new Option('--promote <policy>', 'when the new version takes traffic').choices([
        'now',
        'canary',
        'manual',
      ]),
    )
    .option('--canary-weight <weight>', 'share of traffic for the candidate, 0 to 1', parseWeight)
    .option('--no-wait', 'return once uploaded, without waiting for the registration')
    .option(
      '--timeout <seconds>',
      'how long to wait for the registration',
      (value) => parsePositiveInteger(value, '--timeout'),
      300,
    )
    .description('upload a model to incoming/<model>/ and wait for it to be registered')
    .action(async (file: string, opts: PushOptions, command: Command) =>
      withContext(command, (context) => push(file, opts, context)),
    );
}
