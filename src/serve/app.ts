import pkg from '../../package.json' with { type: 'json' };
import { errorMessage, MaasError } from '../errors/index.ts';
import { EXPLAIN_DEFAULTS, type ExplainSettings } from '../explain/index.ts';
import { isRouted, type MetricsSink, type MetricValues } from '../metrics/index.ts';
import type { TensorSpec } from '../onnx/index.ts';
import {
  checkBodySize,
  DEFAULT_LIMITS,
  decodeContentEncoding,
  decodeRepositoryIndexRequest,
  encodeModelConfig,
  type HttpRequest,
  type HttpResponse,
  InputRejectedError,
  jsonResponse,
  MethodNotAllowedError,
  type ProtocolLimits,
  type RepositoryIndexEntry,
  RepositoryReadOnlyError,
  RouteNotFoundError,
  toHttpResponse,
} from '../protocol/index.ts';
import type { ModelProvider, RouteVariant } from '../runtime/index.ts';
import { type ExplainDeps, explainMetrics, explainV1, explainV2 } from './explain.ts';
import { type Exchange, inferV2, predictV1 } from './infer.ts';
import { dimensionsOf, inferenceMetrics } from './metrics.ts';
import {
  EXPLAIN_ROUTES,
  INFERENCE_ROUTES,
  matchRoute,
  type Route,
  type RouteName,
} from './routes.ts';
import { ShadowBudget, type ShadowSettings } from './shadow.ts';

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
  /** model runs an explanation spent */
  explainEvaluations?: number;
  /** `MaasError.code` of a refused request */
  errorCode?: string;
  /** the error behind a 5xx, for the operator's log only */
  error?: unknown;
  /** what onnxruntime said when it refused a request's values (a 400), for the operator's log only */
  runtimeError?: string;
}

export interface PredictAppDeps {
  provider: ModelProvider;
  metrics?: MetricsSink;
  limits?: Partial<ProtocolLimits>;
  /** the switch and caps of explanations; default: on, with `EXPLAIN_DEFAULTS` */
  explain?: ExplainSettings;
  /** called after every request with what happened, e.g. to log it */
  onRequest?: (record: RequestRecord) => void;
  /** a monotonic clock in ms */
  now?: () => number;
  /** the guard's shadow of production in its watch window; without it, no re-runs */
  shadow?: ShadowSettings;
}

export type PredictApp = (request: HttpRequest) => Promise<HttpResponse>;

export const SERVER_EXTENSIONS = ['binary_tensor_data', 'model_repository'] as const;
export const PLATFORM = 'onnx_onnxv1';

const tensorMetadata = ({ name, datatype, shape }: TensorSpec) => ({ name, datatype, shape });

/** Routes a request to its handler; every failure is thrown, for the app to map once. */
const dispatch = async (
  deps: ExplainDeps,
  request: HttpRequest,
  ex: Exchange,
  route: Route,
): Promise<HttpResponse> => {
  const { provider } = deps;
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
      const limits = described.manifest.inputLimits;
      return jsonResponse(200, {
        name: described.name,
        versions: described.versions.map(String),
        platform: PLATFORM,
        inputs: described.manifest.inputs.map(tensorMetadata),
        outputs: described.manifest.outputs.map(tensorMetadata),
        ...(limits === undefined
          ? {}
          : { limits: { max_elements: limits.maxElements, source: limits.source } }),
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
      return inferV2(deps, request, ex, route.model, route.version);
    case 'model.predict':
      return predictV1(deps, request, ex, route.model);
    case 'model.config': {
      const described = await provider.describe(route.model, route.version);
      return jsonResponse(
        200,
        encodeModelConfig(described.name, described.versions, described.manifest),
      );
    }
    case 'repository.index':
      return jsonResponse(200, await repositoryIndex(provider, request));
    case 'repository.control':
      throw new RepositoryReadOnlyError(route.action, route.model);
    case 'model.explain':
      return explainV2(deps, request, ex, route.model, route.version);
    case 'model.explain-v1':
      return explainV1(deps, request, ex, route.model);
  }
};

/**
 * Every registered version, as Triton and KServe list a repository. Any committed version serves
 * when pinned (`/versions/N/infer`), so each is READY; the reason says which one unpinned requests
 * reach.
 */
async function repositoryIndex(
  provider: ModelProvider,
  request: HttpRequest,
): Promise<RepositoryIndexEntry[]> {
  decodeRepositoryIndexRequest(request.body);
  const listings = await provider.listModels();
  const entries = await Promise.all(
    listings.map(async (listing) => {
      let versions: number[];
      try {
        ({ versions } = await provider.describe(listing.name));
      } catch (err) {
        // One model's malformed record answers 503 for that model, not for the whole index.
        if (err instanceof MaasError && err.code === 'CorruptRecord') {
          const reason = `its registry record is malformed: ${errorMessage(err)}`;
          return [{ name: listing.name, version: '', state: 'UNAVAILABLE', reason } as const];
        }
        throw err;
      }
      return versions.map((version): RepositoryIndexEntry => {
        const reason =
          listing.production === version
            ? 'production'
            : listing.candidate?.version === version
              ? `candidate, ${Math.round(listing.candidate.weight * 1000) / 10} % of unpinned requests`
              : 'served when pinned';
        return { name: listing.name, version: String(version), state: 'READY', reason };
      });
    }),
  );
  return entries.flat();
}

const recordOf = (
  request: HttpRequest,
  route: Route | undefined,
  ex: Exchange,
  response: HttpResponse,
  latencyMs: number,
  failure: unknown,
): RequestRecord => {
  const { loaded } = ex;
  return {
    requestId: request.requestId,
    method: request.method,
    path: request.path,
    ...(route ? { route: route.name } : {}),
    status: response.status,
    latencyMs,
    ...(route && 'model' in route ? { model: route.model } : {}),
    ...(loaded ? { version: loaded.version, variant: loaded.variant, served: loaded.served } : {}),
    ...(ex.inferenceMs === undefined ? {} : { inferenceMs: ex.inferenceMs }),
    ...(ex.nonFiniteOutputs === undefined ? {} : { nonFiniteOutputs: ex.nonFiniteOutputs }),
    ...(ex.explain === undefined ? {} : { explainEvaluations: ex.explain.evaluations }),
    ...(failure instanceof MaasError ? { errorCode: failure.code } : {}),
    ...(response.status >= 500 ? { error: failure } : {}),
    ...(failure instanceof InputRejectedError && failure.cause !== undefined
      ? { runtimeError: errorMessage(failure.cause) }
      : {}),
  };
};

const stamp = (ex: Exchange): { timestamp?: number } =>
  ex.startedAt === undefined ? {} : { timestamp: ex.startedAt };

/**
 * Builds the predict API: every route of the HTTP contract over a `ModelProvider`. Every failure
 * becomes a JSON error through `toHttpResponse`; only a bug in the platform gives a 500.
 */
export const createPredictApp = (deps: PredictAppDeps): PredictApp => {
  const { metrics, onRequest } = deps;
  const infer: ExplainDeps = {
    provider: deps.provider,
    limits: { ...DEFAULT_LIMITS, ...deps.limits },
    now: deps.now ?? (() => performance.now()),
    explain: deps.explain ?? EXPLAIN_DEFAULTS,
    ...(deps.shadow === undefined
      ? {}
      : { shadow: { settings: deps.shadow, budget: new ShadowBudget(deps.shadow) } }),
    // The guard's `Started` record, written before the model runs so a request that never
    // answers (time-out, crash, out of memory) still counts; stamped, like the answer's record,
    // with the request's start so both land in the same period. The pause lets the line leave
    // the process before a run that may block it for good.
    ...(metrics === undefined
      ? {}
      : {
          beforeRun: async (ex: Exchange, loaded) => {
            const { model, version, variant } = loaded;
            if (!isRouted({ model, version, variant })) return;
            metrics.emit({ Started: 1 }, { model, version, variant }, stamp(ex));
            await new Promise<void>((resolve) => setImmediate(resolve));
          },
        }),
  };
  let coldStart = true;

  return async (request) => {
    const started = infer.now();
    const ex: Exchange = { startedAt: Date.now() };
    let route: Route | undefined;
    let response: HttpResponse;
    let failure: unknown;
    try {
      route = matchRoute(request.path);
      if (route === undefined) throw new RouteNotFoundError(request.method, request.path);
      if (request.method.toUpperCase() !== route.method) {
        throw new MethodNotAllowedError(request.method, request.path, [route.method]);
      }
      checkBodySize(request, infer.limits);
      response = await dispatch(infer, decodeContentEncoding(request, infer.limits), ex, route);
    } catch (err) {
      failure = err;
      response = toHttpResponse(err, request.requestId);
    }
    const latencyMs = infer.now() - started;
    if (ex.loaded) {
      response.headers['x-maas-model-version'] = String(ex.loaded.version);
      response.headers['x-maas-variant'] = ex.loaded.variant;
    }
    const isInference = route !== undefined && INFERENCE_ROUTES.has(route.name);
    // An explanation runs the model many times and may be slow by design: it has its own
    // metrics, so it can never move a version's Requests, Latency or ModelErrors (or its rollback).
    const isExplain = route !== undefined && EXPLAIN_ROUTES.has(route.name);
    if (metrics && (isInference || isExplain || coldStart)) {
      const values: MetricValues = coldStart ? { ColdStart: 1 } : {};
      if (isInference)
        Object.assign(values, inferenceMetrics(ex, response.status, latencyMs, failure));
      if (isExplain) Object.assign(values, explainMetrics(ex, latencyMs));
      const routed = route && 'model' in route ? route.model : undefined;
      const perModel = isInference || isExplain;
      metrics.emit(values, perModel ? dimensionsOf(ex, routed, failure) : undefined, stamp(ex));
    }
    coldStart = false;
    onRequest?.(recordOf(request, route, ex, response, latencyMs, failure));
    return response;
  };
};
