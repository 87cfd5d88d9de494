import { Tensor } from 'onnxruntime-node';
import { errorMessage, MaasError } from '../errors/index.ts';
import { MAX_JSON_DEPTH, nestsTooDeep } from '../json/index.ts';
import type { Datatype, TensorSpec } from '../onnx/index.ts';
import { decodeInferRequest } from '../protocol/index.ts';
import { toOrtTensor } from '../runtime/index.ts';
import { mulberry32 } from '../util/index.ts';
import { UploadRejectedError } from './errors.ts';

/** Inputs for one run, by input name, as onnxruntime takes them. */
export type Feeds = Record<string, Tensor>;

export interface SampleSet {
  feeds: Feeds[];
  /** `sidecar`: the uploader's sample requests; `synthesized`: made up from the signature */
  source: 'sidecar' | 'synthesized';
}

const SIDECAR_SHAPE =
  'a JSON array of Open Inference Protocol V2 request bodies, ' +
  'e.g. [{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [0, 1, 2, 3]}]}]';

const badSidecar = (key: string, what: string, cause?: unknown): UploadRejectedError =>
  new UploadRejectedError(
    'InvalidSamples',
    `The samples file ${key} ${what}. Upload ${SIDECAR_SHAPE}, before the .onnx file, or none at all.`,
    { details: { samplesKey: key }, ...(cause === undefined ? {} : { cause }) },
  );

/**
 * Decodes the `.samples.json` sidecar with the serving protocol's own decoder, against the
 * model's signature: a sample the API would refuse is refused here too, with the same words.
 */
export const decodeSidecar = (
  key: string,
  body: Uint8Array,
  signature: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] },
  limits: { maxSamples: number; maxElements: number },
): SampleSet => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (err) {
    throw badSidecar(key, `is not valid UTF-8 JSON (${errorMessage(err)})`, err);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw badSidecar(key, 'is not a non-empty JSON array');
  }
  // before anything walks it: JSON.stringify of a sample 2 million levels deep overflows the stack
  if (nestsTooDeep(parsed)) {
    throw badSidecar(key, `nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep`);
  }
  const encoder = new TextEncoder();
  const feeds = parsed.slice(0, limits.maxSamples).map((sample: unknown, index) => {
    try {
      const request = decodeInferRequest(
        encoder.encode(JSON.stringify(sample)),
        undefined,
        signature,
        {
          maxElements: limits.maxElements,
        },
      );
      return Object.fromEntries(request.inputs.map((t) => [t.name, toOrtTensor(t)]));
    } catch (err) {
      if (!(err instanceof MaasError)) throw err;
      throw badSidecar(key, `has an unusable sample #${index + 1}: ${err.message}`, err);
    }
  });
  return { feeds, source: 'sidecar' };
};

const SYNTHESIZED_SAMPLES = 4;

/**
 * Inputs made up from the signature when no sidecar came with the upload: dynamic dims 1, floats
 * drawn in [-1, 1), integers 1 (a valid index into any table of two rows or more, and an
 * "attend" in a mask), booleans true, strings "a". Models whose inputs mean more than their type
 * says (a sample rate, a class id) need a sidecar.
 */
export const synthesizeSamples = (inputs: readonly TensorSpec[]): SampleSet => {
  const random = mulberry32(0x5eed);
  const feeds = Array.from({ length: SYNTHESIZED_SAMPLES }, () =>
    Object.fromEntries(
      inputs.map((spec) => {
        const shape = spec.shape.map((d) => (d < 0 ? 1 : d));
        const count = shape.reduce((a, b) => a * b, 1);
        return [spec.name, synthesize(spec.datatype, shape, count, random)];
      }),
    ),
  );
  return { feeds, source: 'synthesized' };
};

/** IEEE half bits of ±0.5, for FP16 inputs (JS has no half type to convert with). */
const HALF_PLUS = 0x3800;
const HALF_MINUS = 0xb800;

const synthesize = (
  datatype: Datatype,
  shape: number[],
  count: number,
  random: () => number,
): Tensor => {
  const float = () => random() * 2 - 1;
  switch (datatype) {
    case 'FP32':
      return new Tensor('float32', Float32Array.from({ length: count }, float), shape);
    case 'FP64':
      return new Tensor('float64', Float64Array.from({ length: count }, float), shape);
    case 'FP16':
      return new Tensor(
        'float16',
        Uint16Array.from({ length: count }, () => (random() < 0.5 ? HALF_MINUS : HALF_PLUS)),
        shape,
      );
    case 'BOOL':
      return new Tensor('bool', new Uint8Array(count).fill(1), shape);
    case 'BYTES':
      return new Tensor('string', new Array<string>(count).fill('a'), shape);
    case 'INT64':
      return new Tensor('int64', new BigInt64Array(count).fill(1n), shape);
    case 'UINT64':
      return new Tensor('uint64', new BigUint64Array(count).fill(1n), shape);
    case 'INT8':
      return new Tensor('int8', new Int8Array(count).fill(1), shape);
    case 'UINT8':
      return new Tensor('uint8', new Uint8Array(count).fill(1), shape);
    case 'INT16':
      return new Tensor('int16', new Int16Array(count).fill(1), shape);
    case 'UINT16':
      return new Tensor('uint16', new Uint16Array(count).fill(1), shape);
    case 'INT32':
      return new Tensor('int32', new Int32Array(count).fill(1), shape);
    case 'UINT32':
      return new Tensor('uint32', new Uint32Array(count).fill(1), shape);
  }
};
