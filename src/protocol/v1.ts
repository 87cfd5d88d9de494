import { InvalidRequestError } from './errors.ts';
import { checkModelLimit, type DecodeLimits } from './limits.ts';
import {
  checkShape,
  type DecodedTensor,
  describeShape,
  elementJson,
  flattenData,
  fromJsonValues,
} from './tensors.ts';
import { parseJsonBody, type Signature } from './v2.ts';

const V1_SHAPE = 'send {"instances": [row, row, ...]} with one row per example';

/**
 * Decodes a V1 `:predict` body for a single-input model: `instances` stacked along a new first
 * dimension, the datatype taken from the signature.
 */
export const decodeV1Request = (
  body: Uint8Array,
  signature: Signature,
  inferPath: string,
  limits: DecodeLimits,
): DecodedTensor => {
  const [spec, ...others] = signature.inputs;
  if (spec === undefined || others.length > 0) {
    throw new InvalidRequestError(
      `V1 :${inferPath.endsWith('/explain') ? 'explain' : 'predict'} serves single-input models; this one takes ${signature.inputs.length} ` +
        `(${signature.inputs.map((s) => s.name).join(', ')}): POST a V2 request to ${inferPath}`,
    );
  }
  const parsed = parseJsonBody(body, 'the request body', V1_SHAPE);
  const instances =
    typeof parsed === 'object' && parsed !== null && 'instances' in parsed
      ? parsed.instances
      : undefined;
  if (!Array.isArray(instances) || instances.length === 0) {
    throw new InvalidRequestError(`"instances" must be a non-empty array; ${V1_SHAPE}`);
  }
  const shape = inferShape(instances, spec.shape.length);
  const count = checkShape(spec, shape, limits.maxElements);
  checkModelLimit(limits.model, count, [{ name: spec.name, shape }]);
  const values = flattenData(spec.name, instances, shape, count);
  return {
    name: spec.name,
    datatype: spec.datatype,
    shape,
    data: fromJsonValues(spec.name, spec.datatype, values),
  };
};

/** The shape the nesting of the first instance implies, never deeper than the model's rank. */
const inferShape = (instances: unknown[], rank: number): number[] => {
  const shape = [instances.length];
  let node: unknown = instances[0];
  while (Array.isArray(node) && shape.length <= rank) {
    shape.push(node.length);
    node = node[0];
  }
  return shape;
};

/** Rows of every output along the first dimension: values for one output, objects for several. */
export const encodeV1Response = (outputs: readonly DecodedTensor[], inferPath: string): string => {
  const [first] = outputs;
  const rows = first?.shape[0] ?? 0;
  for (const tensor of outputs) {
    if (tensor.shape.length === 0 || tensor.shape[0] !== rows) {
      throw new InvalidRequestError(
        `V1 :predict returns rows along the first dimension, but output ${JSON.stringify(tensor.name)} ` +
          `has shape ${describeShape(tensor.shape)}; POST a V2 request to ${inferPath} instead`,
      );
    }
  }
  const predictions: string[] = [];
  for (let r = 0; r < rows; r++) {
    if (outputs.length === 1 && first) predictions.push(rowJson(first, r));
    else {
      const fields = outputs.map((t) => `${JSON.stringify(t.name)}:${rowJson(t, r)}`);
      predictions.push(`{${fields.join(',')}}`);
    }
  }
  return `{"predictions":[${predictions.join(',')}]}`;
};

const rowJson = (tensor: DecodedTensor, row: number): string => {
  const dims = tensor.shape.slice(1);
  const size = dims.reduce((a, b) => a * b, 1);
  let at = row * size;
  const nest = (depth: number): string => {
    if (depth === dims.length) return elementJson(tensor, at++);
    const parts: string[] = [];
    for (let i = 0; i < (dims[depth] ?? 0); i++) parts.push(nest(depth + 1));
    return `[${parts.join(',')}]`;
  };
  return nest(0);
};
