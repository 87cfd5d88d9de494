import { InvalidModelNameError } from './errors.ts';
import type { ServedVariant } from './types.ts';

/** docs/design.md: model names are S3-key-safe and URL-path-safe as they are. */
export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export const isValidModelName = (name: string): boolean => MODEL_NAME_PATTERN.test(name);

/** Returns the name when valid, throws InvalidModelNameError otherwise. */
export function validateModelName(name: string): string {
  if (!isValidModelName(name)) throw new InvalidModelNameError(name);
  return name;
}

export const REGISTRY_PREFIX = 'registry/';
export const INCOMING_PREFIX = 'incoming/';
export const MODEL_SUFFIX = '.onnx';
export const SAMPLES_SUFFIX = '.samples.json';

/** Digits of the millisecond timestamp leading a history key: lexicographic order = time order. */
const HISTORY_TIME_DIGITS = 15;

/** Every key of the storage contract (docs/design.md), in one place. */
export const keys = {
  modelPrefix: (model: string): string => `${REGISTRY_PREFIX}${model}/`,
  versionPrefix: (model: string, version: number): string =>
    `${REGISTRY_PREFIX}${model}/${version}/`,
  variant: (model: string, version: number, variant: ServedVariant): string =>
    `${REGISTRY_PREFIX}${model}/${version}/${variant === 'int8' ? 'model.int8.onnx' : 'model.onnx'}`,
  manifest: (model: string, version: number): string =>
    `${REGISTRY_PREFIX}${model}/${version}/manifest.json`,
  /** created first, with If-None-Match: *, to claim a version number */
  reservation: (model: string, version: number): string =>
    `${REGISTRY_PREFIX}${model}/${version}/reserved.json`,
  aliases: (model: string): string => `${REGISTRY_PREFIX}${model}/aliases.json`,
  historyPrefix: (model: string): string => `${REGISTRY_PREFIX}${model}/history/`,
  historyRecord: (model: string, atMs: number, suffix: string): string =>
    `${keys.historyTimePrefix(model, atMs)}-${suffix}.json`,
  /** every record stamped at `atMs` or later sorts after this */
  historyTimePrefix: (model: string, atMs: number): string =>
    `${REGISTRY_PREFIX}${model}/history/${String(Math.max(0, Math.trunc(atMs))).padStart(HISTORY_TIME_DIGITS, '0')}`,
  incomingPrefix: (model: string): string => `${INCOMING_PREFIX}${model}/`,
  incomingModel: (model: string, fileName: string): string =>
    `${INCOMING_PREFIX}${model}/${fileName}`,
  /** `incoming/m/x.onnx` → `incoming/m/x.samples.json` */
  samplesFor: (modelKey: string): string =>
    `${modelKey.endsWith(MODEL_SUFFIX) ? modelKey.slice(0, -MODEL_SUFFIX.length) : modelKey}${SAMPLES_SUFFIX}`,
} as const;

export interface IncomingKey {
  /** the first path segment, not yet validated as a model name */
  model: string;
  /** the rest of the key after the model */
  fileName: string;
  kind: 'model' | 'samples' | 'other';
}

/** Splits `incoming/<model>/<file>`; `undefined` for keys outside `incoming/`. */
export function parseIncomingKey(key: string): IncomingKey | undefined {
  if (!key.startsWith(INCOMING_PREFIX)) return undefined;
  const rest = key.slice(INCOMING_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return undefined;
  const fileName = rest.slice(slash + 1);
  const kind = fileName.endsWith(SAMPLES_SUFFIX)
    ? 'samples'
    : fileName.endsWith(MODEL_SUFFIX)
      ? 'model'
      : 'other';
  return { model: rest.slice(0, slash), fileName, kind };
}

/** The millisecond timestamp a history key starts with, `undefined` for other keys. */
export function historyKeyTime(key: string): number | undefined {
  const match = /\/history\/(\d+)-[^/]+\.json$/.exec(key);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** The version a `registry/<m>/<v>/` prefix names, `undefined` for other prefixes. */
export function versionOfPrefix(prefix: string): number | undefined {
  const match = /\/([1-9]\d*)\/$/.exec(prefix);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}
