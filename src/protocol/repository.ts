import type { Datatype, TensorSpec } from '../onnx/index.ts';
import { InvalidRequestError } from './errors.ts';

/**
 * The model repository extension of Triton / KServe, read-only: the index lists what is
 * registered, and a Triton-style config describes a model from its signature. Models are loaded
 * and unloaded through S3 (uploads under `incoming/`, aliases), never through these routes.
 */

/** the platform Triton names onnxruntime models by in a model config */
export const CONFIG_PLATFORM = 'onnxruntime_onnx';

export type RepositoryState = 'READY' | 'UNAVAILABLE';

export interface RepositoryIndexEntry {
  name: string;
  version: string;
  state: RepositoryState;
  reason: string;
}

/** The body of `POST /v2/repository/index`: empty, `{}` or `{"ready": true}`. */
export function decodeRepositoryIndexRequest(body: Uint8Array | undefined): { ready: boolean } {
  if (body === undefined || body.byteLength === 0) return { ready: false };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (err) {
    throw new InvalidRequestError(
      'the repository index request is not JSON; send no body, {} or {"ready": true}',
      { cause: err },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidRequestError(
      'the repository index request must be a JSON object: {} or {"ready": true}',
    );
  }
  const { ready } = parsed as { ready?: unknown };
  if (ready !== undefined && typeof ready !== 'boolean') {
    throw new InvalidRequestError(`"ready" must be true or false, got ${JSON.stringify(ready)}`);
  }
  return { ready: ready === true };
}

const TRITON_TYPES: Record<Datatype, string> = {
  BOOL: 'TYPE_BOOL',
  UINT8: 'TYPE_UINT8',
  UINT16: 'TYPE_UINT16',
  UINT32: 'TYPE_UINT32',
  UINT64: 'TYPE_UINT64',
  INT8: 'TYPE_INT8',
  INT16: 'TYPE_INT16',
  INT32: 'TYPE_INT32',
  INT64: 'TYPE_INT64',
  FP16: 'TYPE_FP16',
  FP32: 'TYPE_FP32',
  FP64: 'TYPE_FP64',
  BYTES: 'TYPE_STRING',
};

export interface TritonTensorConfig {
  name: string;
  data_type: string;
  dims: number[];
}

export interface TritonModelConfig {
  name: string;
  platform: typeof CONFIG_PLATFORM;
  backend: 'onnxruntime';
  /**
   * 0: `dims` are whole shapes, `-1` where a dim is dynamic. Requests of any batch size in a
   * dynamic first dim are served (up to the element cap); the server batches nothing itself.
   */
  max_batch_size: 0;
  version_policy: { specific: { versions: number[] } };
  input: TritonTensorConfig[];
  output: TritonTensorConfig[];
}

const tensorConfig = (spec: TensorSpec): TritonTensorConfig => ({
  name: spec.name,
  data_type: TRITON_TYPES[spec.datatype],
  dims: spec.shape.map((dim) => (dim < 0 ? -1 : dim)),
});

/** A Triton-style model config (as `GET /v2/models/{m}/config` answers) from a signature. */
export const encodeModelConfig = (
  name: string,
  versions: readonly number[],
  signature: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] },
): TritonModelConfig => ({
  name,
  platform: CONFIG_PLATFORM,
  backend: 'onnxruntime',
  max_batch_size: 0,
  version_policy: { specific: { versions: [...versions] } },
  input: signature.inputs.map(tensorConfig),
  output: signature.outputs.map(tensorConfig),
});
