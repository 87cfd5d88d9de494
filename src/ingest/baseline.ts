import type { Tensor } from 'onnxruntime-node';
import type { TensorSpec } from '../onnx/index.ts';
import type { InputMean } from '../registry/index.ts';

/** Element means per position are recorded up to this many elements per input, to keep manifests small. */
export const MAX_MEAN_ELEMENTS = 16_384;

const NUMERIC = new Set([
  'float32',
  'float64',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'bool',
]);

/**
 * Per-input means of the upload's sample requests, the `samples-mean` baseline of explanations:
 * the mean of every element, and per element of one example (the batch dim averaged out) when
 * every sample had the same example shape. Inputs that are not numbers (strings, FP16) are left
 * out, and an explanation of them falls back to zeros.
 */
export const sampleMeans = (
  feeds: readonly Record<string, Tensor>[],
  inputs: readonly TensorSpec[],
): Record<string, InputMean> => {
  const out: Record<string, InputMean> = {};
  for (const spec of inputs) {
    const tensors = feeds.map((f) => f[spec.name]).filter((t) => t !== undefined);
    if (tensors.length === 0 || !tensors.every((t) => NUMERIC.has(t.type))) continue;
    const batched = spec.shape[0] === -1;
    const exampleShape = (t: Tensor): number[] => (batched ? t.dims.slice(1) : [...t.dims]);
    const first = exampleShape(tensors[0] as Tensor);
    const sameShape = tensors.every((t) => {
      const shape = exampleShape(t);
      return shape.length === first.length && shape.every((d, i) => d === first[i]);
    });
    const size = first.reduce((a, b) => a * b, 1);
    const perElement = sameShape && size <= MAX_MEAN_ELEMENTS ? new Float64Array(size) : undefined;
    let total = 0;
    let elements = 0;
    let rows = 0;
    for (const t of tensors) {
      const data = t.data as ArrayLike<number | bigint>;
      for (let i = 0; i < data.length; i++) {
        const v = Number(data[i]);
        total += v;
        if (perElement) perElement[i % size] = (perElement[i % size] ?? 0) + v;
      }
      elements += data.length;
      rows += size === 0 ? 0 : data.length / size;
    }
    if (elements === 0) continue;
    out[spec.name] = {
      samples: tensors.length,
      mean: total / elements,
      ...(perElement && rows > 0
        ? { shape: first, elements: Array.from(perElement, (v) => v / rows) }
        : {}),
    };
  }
  return out;
};
