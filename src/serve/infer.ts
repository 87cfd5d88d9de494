import type { Tensor } from 'onnxruntime-node';
import { MaasError } from '../errors/index.ts';
import {
  checkInferMediaType,
  checkResponseSize,
  countNonFinite,
  type DecodedInferRequest,
  type DecodedTensor,
  type DecodeLimits,
  decodeInferRequest,
  decodeV1Request,
  encodeInferResponse,
  encodeV1Response,
  type HttpRequest,
  type HttpResponse,
  INFERENCE_HEADER_LENGTH,
  InputRejectedError,
  inferPath,
  JSON_CONTENT_TYPE,
  type ProtocolLimits,
  parseHeaderLength,
  requireBody,
} from '../protocol/index.ts';
import {
  fromOrtTensor,
  type LoadedModel,
  type ModelProvider,
  toOrtTensor,
} from '../runtime/index.ts';
import { type ShadowBudget, type ShadowSettings, shadowTarget } from './shadow.ts';

/** What serving one request found out, for its metrics and its log record. */
export interface Exchange {
  /** epoch ms the request arrived: the period its metrics count in */
  startedAt?: number;
  loaded?: LoadedModel;
  inferenceMs?: number;
  nonFiniteOutputs?: number;
  /** set by an explain request that produced an explanation */
  explain?: { evaluations: number; method: string };
  /** a failure re-run on the previous known-good version: did it answer, and how long it took */
  shadow?: { version: number; answered: boolean; ms: number };
}

export interface InferDeps {
  provider: ModelProvider;
  limits: ProtocolLimits;
  /** a monotonic clock in ms */
  now: () => number;
  /** called once the model version is known, before it runs (the guard's `Started` record) */
  beforeRun?: (ex: Exchange, loaded: LoadedModel) => Promise<void>;
  /** re-runs failures of production in its watch window on the previous known-good version */
  shadow?: { settings: ShadowSettings; budget: ShadowBudget };
}

/** The platform's element cap, and the version's own bound from its manifest when it has one. */
export const decodeLimits = (
  deps: Pick<InferDeps, 'limits'>,
  loaded: LoadedModel,
): DecodeLimits => ({
  maxElements: deps.limits.maxElements,
  ...(loaded.inputLimits === undefined
    ? {}
    : { model: { model: `${loaded.model} v${loaded.version}`, ...loaded.inputLimits } }),
});

/**
 * Re-runs a failed request on the previous known-good version when production is watched and the
 * budget allows; records whether that version answered. Its own failure to load changes nothing.
 */
const shadowRun = async (
  deps: InferDeps,
  ex: Exchange,
  version: number | undefined,
  loaded: LoadedModel,
  feeds: Record<string, Tensor>,
  outputNames: string[],
): Promise<void> => {
  if (version === undefined || deps.shadow === undefined || !deps.shadow.budget.take()) return;
  const started = deps.now();
  let previous: LoadedModel;
  try {
    previous = await deps.provider.acquire(loaded.model, version);
  } catch {
    // the previous version cannot serve: no evidence either way, so no check is recorded
    return;
  }
  let answered = false;
  try {
    await previous.run(feeds, outputNames);
    answered = true;
  } catch {
    // fails there too: the inputs, not the new version
  }
  ex.shadow = { version, answered, ms: deps.now() - started };
};

/** Runs decoded inputs on a loaded version and returns the named outputs in codec form. */
const runModel = async (
  deps: InferDeps,
  ex: Exchange,
  loaded: LoadedModel,
  inputs: readonly DecodedTensor[],
  outputNames: string[],
): Promise<DecodedTensor[]> => {
  const feeds: Record<string, Tensor> = {};
  for (const input of inputs) feeds[input.name] = toOrtTensor(input);
  const watched =
    deps.shadow === undefined ? undefined : shadowTarget(deps.shadow.settings, loaded, Date.now());
  if (watched !== undefined) deps.shadow?.budget.served();
  await deps.beforeRun?.(ex, loaded);
  const started = deps.now();
  let results: Record<string, Tensor>;
  try {
    results = await loaded.run(feeds, outputNames);
  } catch (err) {
    if (err instanceof MaasError) throw err;
    ex.inferenceMs = deps.now() - started;
    await shadowRun(deps, ex, watched, loaded, feeds, outputNames);
    // The inputs matched the signature, so what onnxruntime refuses is their values (an index
    // past a vocabulary, a reshape that cannot hold): the client's to fix, never a 500.
    // The runtime's own words (its source paths, kernel and node names) are for the operator's
    // log, which gets them from the cause; the client is told what it can act on.
    const sent = inputs
      .map((t) => `${JSON.stringify(t.name)} ${t.datatype} [${t.shape.join(', ')}]`)
      .join(', ');
    throw new InputRejectedError(
      `model ${loaded.model} v${loaded.version} could not run on the inputs ${sent}: their values ` +
        'are outside what it was built for (an index past the end of a table, a size that a ' +
        "reshape cannot hold, ...). Send values in the ranges of the model's training data; the " +
        "runtime's own reason is in the service's log under this request's id",
      { cause: err },
    );
  } finally {
    ex.inferenceMs ??= deps.now() - started;
  }
  const outputs = outputNames.map((name) => {
    const tensor = results[name];
    if (tensor === undefined) {
      throw new MaasError('MissingOutput', `the runtime returned no output ${name}`);
    }
    return fromOrtTensor(name, tensor);
  });
  ex.nonFiniteOutputs = outputs.reduce((sum, t) => sum + countNonFinite(t), 0);
  return outputs;
};

/**
 * A V2 request's body checked (media type, binary header), the version it routes to acquired,
 * and the body decoded against that version's signature and bounds.
 */
export const acquireDecoded = async (
  deps: Pick<InferDeps, 'provider' | 'limits'>,
  request: HttpRequest,
  ex: Exchange,
  model: string,
  version?: number,
): Promise<{ loaded: LoadedModel; decoded: DecodedInferRequest }> => {
  const body = requireBody(request);
  const headerLength = parseHeaderLength(request.headers[INFERENCE_HEADER_LENGTH], body.byteLength);
  checkInferMediaType(request, headerLength !== undefined, true);
  const loaded = await deps.provider.acquire(model, version);
  ex.loaded = loaded;
  const decoded = decodeInferRequest(body, headerLength, loaded, decodeLimits(deps, loaded));
  return { loaded, decoded };
};

/** `POST /v2/models/{m}[/versions/{v}]/infer`: JSON or the binary tensor extension. */
export const inferV2 = async (
  deps: InferDeps,
  request: HttpRequest,
  ex: Exchange,
  model: string,
  version?: number,
): Promise<HttpResponse> => {
  const { loaded, decoded } = await acquireDecoded(deps, request, ex, model, version);
  const names = decoded.outputs.map((o) => o.name);
  const tensors = await runModel(deps, ex, loaded, decoded.inputs, names);
  const encoded = encodeInferResponse({
    modelName: loaded.model,
    modelVersion: loaded.version,
    ...(decoded.id === undefined ? {} : { id: decoded.id }),
    outputs: tensors.map((tensor, i) => ({ tensor, binary: decoded.outputs[i]?.binary ?? false })),
  });
  checkResponseSize(encoded.body, deps.limits);
  return { status: 200, headers: encoded.headers, body: encoded.body };
};

/** `POST /v1/models/{m}:predict`: `{"instances": [...]}` for single-input models. */
export const predictV1 = async (
  deps: InferDeps,
  request: HttpRequest,
  ex: Exchange,
  model: string,
): Promise<HttpResponse> => {
  const body = requireBody(request);
  checkInferMediaType(request, false, false);
  const loaded = await deps.provider.acquire(model);
  ex.loaded = loaded;
  const input = decodeV1Request(body, loaded, inferPath(model), decodeLimits(deps, loaded));
  const names = loaded.outputs.map((o) => o.name);
  const tensors = await runModel(deps, ex, loaded, [input], names);
  const json = encodeV1Response(tensors, inferPath(model));
  checkResponseSize(json, deps.limits);
  return { status: 200, headers: { 'content-type': JSON_CONTENT_TYPE }, body: json };
};
