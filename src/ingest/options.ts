import type { PromotePolicy } from '../registry/index.ts';
import { UploadRejectedError } from './errors.ts';

/** Per-upload choices, carried as S3 user metadata on the `.onnx` object (docs/design.md). */
export interface UploadOptions {
  /** `maas-quantize`: `on` (default) or `off` */
  quantize: boolean;
  /** `maas-promote`: `canary` (default), `now` or `manual` */
  promote: PromotePolicy;
  /** `maas-canary-weight`: 0–1; the configured default when absent */
  canaryWeight?: number;
  /**
   * `maas-accuracy`: what the int8 gate compares, `cosine` (default; `cosine:0.99` sets the
   * minimum) or `top1` (classifiers: share of rows with fp32's class, `top1:0.99`; default 0.98)
   */
  accuracy?: AccuracyTest;
  /**
   * `maas-max-elements`: elements across the inputs of one request this model accepts; `off`
   * leaves only the platform's caps. Absent: learned from the samples.
   */
  maxElements?: number | 'off';
}

export interface AccuracyTest {
  metric: 'cosine' | 'top1';
  /** the minimum; the configured gate minimum (cosine) or 0.98 (top1) when absent */
  min?: number;
}

/** The lowest minimum an upload may ask for: below it int8 could serve a visibly different model. */
export const MIN_ACCURACY_FLOOR = 0.9;

export const METADATA = {
  quantize: 'maas-quantize',
  promote: 'maas-promote',
  canaryWeight: 'maas-canary-weight',
  accuracy: 'maas-accuracy',
  maxElements: 'maas-max-elements',
} as const;

const invalid = (name: string, value: string, expected: string): UploadRejectedError =>
  new UploadRejectedError(
    'InvalidUploadOption',
    `The upload's metadata ${name}=${JSON.stringify(value)} is not valid: set it to ${expected} ` +
      `(e.g. aws s3 cp --metadata ${name}=...), or leave it out for the default.`,
    { details: { name, value } },
  );

/**
 * Reads the options from an object's metadata (keys lower-case, as S3 returns them). An unknown
 * value is a rejection rather than a silent default: the uploader asked for something specific.
 */
export const parseUploadOptions = (metadata: Readonly<Record<string, string>>): UploadOptions => {
  const quantize = metadata[METADATA.quantize]?.trim().toLowerCase() ?? 'on';
  if (quantize !== 'on' && quantize !== 'off') {
    throw invalid(METADATA.quantize, quantize, '`on` or `off`');
  }
  const promote = metadata[METADATA.promote]?.trim().toLowerCase() ?? 'canary';
  if (promote !== 'now' && promote !== 'canary' && promote !== 'manual') {
    throw invalid(METADATA.promote, promote, '`now`, `canary` or `manual`');
  }
  const options: UploadOptions = { quantize: quantize === 'on', promote };
  const weightText = metadata[METADATA.canaryWeight]?.trim();
  if (weightText !== undefined) {
    const weight = Number(weightText);
    if (weightText === '' || !Number.isFinite(weight) || weight < 0 || weight > 1) {
      throw invalid(METADATA.canaryWeight, weightText, 'a number from 0 to 1');
    }
    options.canaryWeight = weight;
  }
  const accuracyText = metadata[METADATA.accuracy]?.trim().toLowerCase();
  if (accuracyText !== undefined) options.accuracy = parseAccuracy(accuracyText);
  const maxText = metadata[METADATA.maxElements]?.trim().toLowerCase();
  if (maxText !== undefined) {
    const max = Number(maxText);
    if (maxText === 'off') options.maxElements = 'off';
    else if (maxText === '' || !Number.isSafeInteger(max) || max < 1) {
      throw invalid(METADATA.maxElements, maxText, 'a whole number of elements, or `off`');
    } else options.maxElements = max;
  }
  return options;
};

const parseAccuracy = (text: string): AccuracyTest => {
  const expected =
    `\`cosine\`, \`top1\`, or either with a minimum from ${MIN_ACCURACY_FLOOR} to 1 ` +
    '(`cosine:0.99`, `top1:0.98`)';
  const [metric, minText, ...rest] = text.split(':');
  if ((metric !== 'cosine' && metric !== 'top1') || rest.length > 0) {
    throw invalid(METADATA.accuracy, text, expected);
  }
  if (minText === undefined) return { metric };
  const min = Number(minText);
  if (minText === '' || !Number.isFinite(min) || min < MIN_ACCURACY_FLOOR || min > 1) {
    throw invalid(METADATA.accuracy, text, expected);
  }
  return { metric, min };
};

/** How a manifest names the test: `cosine>=0.999`, `top1>=0.98`. */
export const describeAccuracy = (test: AccuracyTest, defaultCosine: number): string =>
  test.metric === 'top1' ? `top1>=${test.min ?? 0.98}` : `cosine>=${test.min ?? defaultCosine}`;
