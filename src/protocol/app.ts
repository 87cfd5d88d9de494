import type { Tensor } from 'onnxruntime-node';
import pkg from '../../package.json' with { type: 'json' };
import { errorMessage, MaasError } from '../errors/index.ts';
import type { MetricDimensions, MetricsSink, MetricValues } from '../metrics/index.ts';
import type { TensorSpec } from '../onnx/index.ts';
import {
  InputRejectedError,
  InvalidRequestError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  RouteNotFoundError,
  toHttpResponse,
  UnsupportedMediaTypeError,
} from './errors.ts';
import {
  BINARY_CONTENT_TYPE,
  type HttpRequest,
  type HttpResponse,
  INFERENCE_HEADER_LENGTH,
  JSON_CONTENT_TYPE,
  jsonResponse,
} from './http.ts';
import { DEFAULT_LIMITS, type ProtocolLimits } from './limits.ts';
import { fromOrtTensor, toOrtTensor } from './ort.ts';
import type { LoadedModel, ModelProvider, RouteVariant } from './provider.ts';
import { countNonFinite, type DecodedTensor } from './tensors.ts';
import { decodeV1Request, encodeV1Response } from './v1.ts';
import { decodeInferRequest, encodeInferResponse, parseHeaderLength } from './v2.ts';

export type RouteName =
  | 'health.live'
  | 'health.ready'
  | 'server.metadata'
  | 'models.list'
  | 'model.metadata'
  | 'model.ready'
  | 'model.infer'
  | 'model.predict';

const INFERENCE_ROUTES: ReadonlySet<RouteName> = new Set(['model.infer', 'model.predict']);

/** What the app tells its host about each request, for logs. */
export interface RequestRecord {
  requestId: string;
  method: string;
  path: string;
  route?: RouteName;
  status: number;
  latencyMs: number;
  model?: string;
  version?: number;
  variant?: RouteVariant;
  served?: 'int8' | 'fp32';
  inferenceMs?: number;
  nonFiniteOutputs?: number;
  /** `MaasError.code` of a refused request */
  errorCode?: string;
  /** the error behind a 5xx, for the operator's log only */
  error?: unknown;
}

export interface PredictAppDeps {
  provider: ModelProvider;
  metrics?: MetricsSink;
  limits?: Partial<ProtocolLimits>;
  /** called after every request with what happened, e.g. to log it */
  onRequest?: (record: RequestRecord) => void;
  /** a monotonic clock in ms */
  now?: () => number;
}

export type PredictApp = (request: HttpRequest) => Promise<HttpResponse>;

export const SERVER_EXTENSIONS = ['binary_tensor_data', 'model_repository'] as const;
export const PLATFORM = 'onnx_onnxv1';

const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const VERSION = /^[1-9][0-9]{0,8}$/;

type Route =
  | { name: 'health.live' | 'health.ready' | 'server.metadata' | 'models.list'; method: 'GET' }
  | {
      name: 'model.metadata' | 'model.ready' | 'model.infer' | 'model.predict';
      method: 'GET' | 'POST';
      model: string;
      version?: number;
    };

const modelName = (raw: string): string => {
  if (!MODEL_NAME.test(raw)) {
    throw new InvalidRequestError(
      `${JSON.stringify(raw)} is not a model name; names match ${MODEL_NAME.source}`,
    );
  }
  return raw;
};

const versionNumber = (raw: string): number => {
  if (!VERSION.test(raw)) {
    throw new InvalidRequestError(
      `${JSON.stringify(raw)} is not a version; versions are positive integers (1, 2, 3, ...)`,
    );
  }
  return Number(raw);
};

/** Matches the HTTP contract of DESIGN.md; `undefined` when no route has this path. */
export const matchRoute = (path: string): Route | undefined => {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  let segments: string[];
  try {
    segments = trimmed.split('/').map(decodeURIComponent);
  } catch {
    return undefined;
  }
  const [root, api, a, b, c, d, e, ...rest] = segments;
  if (root !== '' || rest.length > 0) return undefined;
  if (api === 'v1') {
    const name =
      a === 'models' && c === undefined && b?.endsWith(':predict') ? b.slice(0, -8) : undefined;
    return name === undefined
      ? undefined
      : { name: 'model.predict', method: 'POST', model: modelName(name) };
  }
  if (api !== 'v2') return undefined;
  if (a === undefined) return { name: 'server.metadata', method: 'GET' };
  if (a === 'health' && c === undefined) {
    if (b === 'live') return { name: 'health.live', method: 'GET' };
    if (b === 'ready') return { name: 'health.ready', method: 'GET' };
    return undefined;
  }
  if (a !== 'models') return undefined;
  if (b === undefined) return { name: 'models.list', method: 'GET' };
  const model = modelName(b);
  let version: number | undefined;
  let action = c;
  if (c === 'versions') {
    if (d === undefined) return undefined;
    version = versionNumber(d);
    action = e;
  } else if (d !== undefined) return undefined;
  const at = { model, ...(version === undefined ? {} : { version }) };
  if (action === undefined) return { name: 'model.metadata', method: 'GET', ...at };
  if (action === 'ready') return { name: 'model.ready', method: 'GET', ...at };
  if (action === 'infer') return { name: 'model.infer', method: 'POST', ...at };
  return undefined;
};

const mediaType = (request: HttpRequest): string =>
  (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

const requireBody = (request: HttpRequest): Uint8Array => {
  if (request.body === undefined || request.body.byteLength === 0) {
    throw new InvalidRequestError('the request has no body; POST a JSON inference request');
  }
  return request.body;
};

/** Accepts JSON, or the binary extension's octet-stream; anything else is a 415. */
const checkInferMediaType = (request: HttpRequest, binary: boolean, allowBinary: boolean): void => {
  const type = mediaType(request);
  const json = type === '' || type === JSON_CONTENT_TYPE;
  if (json || (binary && type === BINARY_CONTENT_TYPE)) return;
  if (type === BINARY_CONTENT_TYPE && allowBinary) {
    throw new InvalidRequestError(
      `${BINARY_CONTENT_TYPE} bodies need the Inference-Header-Content-Length header: the byte ` +
        'length of the JSON that starts the body (binary tensor data extension)',
    );
  }
  throw new UnsupportedMediaTypeError(
    `Content-Type ${type} is not supported; send ${JSON_CONTENT_TYPE}` +
      (allowBinary
        ? `, or ${BINARY_CONTENT_TYPE} with Inference-Header-Content-Length for binary tensor data`
        : ''),
  );
};

const inferPath = (model: string, version?: number): string =>
  version === undefined
    ? `/v2/models/${model}/infer`
    : `/v2/models/${model}/versions/${version}/infer`;

/** Response wire size: API Gateway carries binary bodies base64-encoded inside Lambda's response. */
const wireBytes = (body: string | Uint8Array): number =>
  typeof body === 'string' ? Buffer.byteLength(body) : Math.ceil(body.byteLength / 3) * 4;

interface Context {
  route?: Route;
  loaded?: LoadedModel;
  inferenceMs?: number;
  nonFiniteOutputs?: number;
}

const isVariant = (v: unknown): v is RouteVariant =>
  v === 'production' || v === 'candidate' || v === 'pinned';

/** The model version a failed request counts against, when the error says which one. */
const dimensionsOf = (ctx: Context, err: unknown): MetricDimensions | undefined => {
  if (ctx.loaded) {
    const { model, version, variant } = ctx.loaded;
    return { model, version, variant };
  }
  const routed = ctx.route && 'model' in ctx.route ? ctx.route.model : undefined;
  if (err instanceof MaasError && routed !== undefined) {
    const { model, version, variant } = err.details;
    if (model === routed && typeof version === 'number' && isVariant(variant)) {
      return { model, version, variant };
    }
  }
  return undefined;
};

/**
 * Builds the predict API: every route of the HTTP contract over a `ModelProvider`. Every failure
 * becomes a JSON error through `toHttpResponse`; only a bug in the platform gives a 500.
 */
export const createPredictApp = (deps: PredictAppDeps): PredictApp => {
  const { provider, metrics, onRequest } = deps;
  const limits: ProtocolLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const now = deps.now ?? (() => performance.now());
  let coldStart = true;

  const run = async (
    ctx: Context,
    loaded: LoadedModel,
    inputs: DecodedTensor[],
    outputNames: string[],
  ): Promise<DecodedTensor[]> => {
    const feeds: Record<string, Tensor> = {};
    for (const input of inputs) feeds[input.name] = toOrtTensor(input);
    const started = now();
    let results: Record<string, Tensor>;
    try {
      results = await loaded.run(feeds, outputNames);
    } catch (err) {
      if (err instanceof MaasError) throw err;
      // The inputs matched the signature, so what onnxruntime refuses is their values (an index
      // past a vocabulary, a reshape that cannot hold): the client's to fix, never a 500.
      throw new InputRejectedError(
        `the model could not run on these inputs: ${errorMessage(err).slice(0, 400)}`,
        { cause: err },
      );
    } finally {
      ctx.inferenceMs = now() - started;
    }
    const outputs = outputNames.map((name) => {
      const tensor = results[name];
      if (tensor === undefined) {
        throw new MaasError('MissingOutput', `the runtime returned no output ${name}`);
      }
      return fromOrtTensor(name, tensor);
    });
    ctx.nonFiniteOutputs = outputs.reduce((sum, t) => sum + countNonFinite(t), 0);
    return outputs;
  };

  const checkResponseSize = (body: string | Uint8Array): void => {
    const bytes = wireBytes(body);
    if (bytes > limits.maxResponseBytes) {
      throw new PayloadTooLargeError(
        `the response would be ${bytes} bytes, over the cap of ${limits.maxResponseBytes}; ` +
          'ask for fewer outputs ("outputs"), binary outputs, or send a smaller batch',
      );
    }
  };

  const infer = async (request: HttpRequest, ctx: Context, model: string, version?: number) => {
    const body = requireBody(request);
    const headerLength = parseHeaderLength(
      request.headers[INFERENCE_HEADER_LENGTH],
      body.byteLength,
    );
    checkInferMediaType(request, headerLength !== undefined, true);
    const loaded = await provider.acquire(model, version);
    ctx.loaded = loaded;
    const decoded = decodeInferRequest(body, headerLength, loaded, limits);
    const names = decoded.outputs.map((o) => o.name);
    const tensors = await run(ctx, loaded, decoded.inputs, names);
    const encoded = encodeInferResponse({
      modelName: loaded.model,
      modelVersion: loaded.version,
      ...(decoded.id === undefined ? {} : { id: decoded.id }),
      outputs: tensors.map((tensor, i) => ({
        tensor,
        binary: decoded.outputs[i]?.binary ?? false,
      })),
    });
    checkResponseSize(encoded.body);
    return { status: 200, headers: encoded.headers, body: encoded.body };
  };

  const predict = async (request: HttpRequest, ctx: Context, model: string) => {
    const body = requireBody(request);
    checkInferMediaType(request, false, false);
    const loaded = await provider.acquire(model);
    ctx.loaded = loaded;
    const input = decodeV1Request(body, loaded, inferPath(model), limits);
    const tensors = await run(
      ctx,
      loaded,
      [input],
      loaded.outputs.map((o) => o.name),
    );
    const json = encodeV1Response(tensors, inferPath(model));
    checkResponseSize(json);
    return { status: 200, headers: { 'content-type': JSON_CONTENT_TYPE }, body: json };
  };

  const dispatch = async (request: HttpRequest, ctx: Context): Promise<HttpResponse> => {
    const route = matchRoute(request.path);
    if (route === undefined) throw new RouteNotFoundError(request.method, request.path);
    ctx.route = route;
    if (request.method.toUpperCase() !== route.method) {
      throw new MethodNotAllowedError(request.method, request.path, [route.method]);
    }
    if ((request.body?.byteLength ?? 0) > limits.maxBodyBytes) {
      throw new PayloadTooLargeError(
        `the request body is ${request.body?.byteLength} bytes, over the cap of ` +
          `${limits.maxBodyBytes}; send smaller batches (binary tensor data is ~3x smaller than JSON)`,
      );
    }
    switch (route.name) {
      case 'health.live':
        return jsonResponse(200, { live: true });
      case 'health.ready':
        await provider.listModels();
        return jsonResponse(200, { ready: true });
      case 'server.metadata':
        return jsonResponse(200, {
          name: pkg.name,
          version: pkg.version,
          extensions: SERVER_EXTENSIONS,
        });
      case 'models.list':
        return jsonResponse(200, { models: await provider.listModels() });
      case 'model.metadata': {
        const described = await provider.describe(route.model, route.version);
        const tensor = ({ name, datatype, shape }: TensorSpec) => ({ name, datatype, shape });
        return jsonResponse(200, {
          name: described.name,
          versions: described.versions.map(String),
          platform: PLATFORM,
          inputs: described.manifest.inputs.map(tensor),
          outputs: described.manifest.outputs.map(tensor),
        });
      }
      case 'model.ready': {
        const loaded = await provider.acquire(route.model, route.version);
        return jsonResponse(200, {
          name: loaded.model,
          version: String(loaded.version),
          ready: true,
        });
      }
      case 'model.infer':
        return infer(request, ctx, route.model, route.version);
      case 'model.predict':
        return predict(request, ctx, route.model);
    }
  };

  return async (request) => {
    const started = now();
    const ctx: Context = {};
    let response: HttpResponse;
    let failure: unknown;
    try {
      response = await dispatch(request, ctx);
    } catch (err) {
      failure = err;
      response = toHttpResponse(err, request.requestId);
    }
    const latencyMs = now() - started;
    const { loaded } = ctx;
    if (loaded) {
      response.headers['x-maas-model-version'] = String(loaded.version);
      response.headers['x-maas-variant'] = loaded.variant;
    }
    const isInference = ctx.route !== undefined && INFERENCE_ROUTES.has(ctx.route.name);
    // A run that onnxruntime refuses on signature-valid inputs answers 400 (a client can never
    // cause a 500) but counts against the model version: a canary that fails where production
    // succeeds must trip the ModelErrors alarm and be rolled back.
    const modelFailed = failure instanceof InputRejectedError;
    if (metrics && (isInference || coldStart)) {
      const values: MetricValues = coldStart ? { ColdStart: 1 } : {};
      if (isInference) {
        Object.assign(values, {
          Requests: 1,
          Latency: latencyMs,
          ModelErrors: response.status >= 500 || modelFailed ? 1 : 0,
          ClientErrors:
            response.status >= 400 &&
            response.status < 500 &&
            response.status !== 429 &&
            !modelFailed
              ? 1
              : 0,
          ...(ctx.inferenceMs === undefined ? {} : { InferenceLatency: ctx.inferenceMs }),
          ...(loaded?.load === undefined ? {} : { ModelLoadLatency: loaded.load.totalMs }),
          ...(ctx.nonFiniteOutputs === undefined ? {} : { NonFiniteOutputs: ctx.nonFiniteOutputs }),
        });
      }
      metrics.emit(values, isInference ? dimensionsOf(ctx, failure) : undefined);
    }
    coldStart = false;
    onRequest?.({
      requestId: request.requestId,
      method: request.method,
      path: request.path,
      ...(ctx.route ? { route: ctx.route.name } : {}),
      status: response.status,
      latencyMs,
      ...(ctx.route && 'model' in ctx.route ? { model: ctx.route.model } : {}),
      ...(loaded
        ? { version: loaded.version, variant: loaded.variant, served: loaded.served }
        : {}),
      ...(ctx.inferenceMs === undefined ? {} : { inferenceMs: ctx.inferenceMs }),
      ...(ctx.nonFiniteOutputs === undefined ? {} : { nonFiniteOutputs: ctx.nonFiniteOutputs }),
      ...(failure instanceof MaasError ? { errorCode: failure.code } : {}),
      ...(response.status >= 500 ? { error: failure } : {}),
    });
    return response;
  };
};
