import { InvalidRequestError } from '../protocol/index.ts';

export type RouteName =
  | 'health.live'
  | 'health.ready'
  | 'server.metadata'
  | 'models.list'
  | 'model.metadata'
  | 'model.ready'
  | 'model.infer'
  | 'model.predict'
  | 'model.config'
  | 'repository.index'
  | 'repository.control'
  | 'model.explain'
  | 'model.explain-v1';

/** the routes that run a model and count toward its request metrics */
export const INFERENCE_ROUTES: ReadonlySet<RouteName> = new Set(['model.infer', 'model.predict']);

/** the routes that explain a prediction: their own metrics, never the inference ones */
export const EXPLAIN_ROUTES: ReadonlySet<RouteName> = new Set([
  'model.explain',
  'model.explain-v1',
]);

export type Route =
  | { name: 'health.live' | 'health.ready' | 'server.metadata' | 'models.list'; method: 'GET' }
  | { name: 'repository.index'; method: 'POST' }
  | { name: 'repository.control'; method: 'POST'; model: string; action: 'load' | 'unload' }
  | {
      name:
        | 'model.metadata'
        | 'model.ready'
        | 'model.infer'
        | 'model.predict'
        | 'model.config'
        | 'model.explain'
        | 'model.explain-v1';
      method: 'GET' | 'POST';
      model: string;
      version?: number;
    };

const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const VERSION = /^[1-9][0-9]{0,8}$/;

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

/** Matches the HTTP routes of docs/design.md; `undefined` when no route has this path. */
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
    if (a !== 'models' || c !== undefined || b === undefined) return undefined;
    if (b.endsWith(':predict')) {
      return { name: 'model.predict', method: 'POST', model: modelName(b.slice(0, -8)) };
    }
    if (b.endsWith(':explain')) {
      return { name: 'model.explain-v1', method: 'POST', model: modelName(b.slice(0, -8)) };
    }
    return undefined;
  }
  if (api !== 'v2') return undefined;
  if (a === undefined) return { name: 'server.metadata', method: 'GET' };
  if (a === 'health' && c === undefined) {
    if (b === 'live') return { name: 'health.live', method: 'GET' };
    if (b === 'ready') return { name: 'health.ready', method: 'GET' };
    return undefined;
  }
  if (a === 'repository') {
    if (b === 'index' && c === undefined) return { name: 'repository.index', method: 'POST' };
    if (b === 'models' && c !== undefined && (d === 'load' || d === 'unload') && e === undefined) {
      return { name: 'repository.control', method: 'POST', model: modelName(c), action: d };
    }
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
  if (action === 'config') return { name: 'model.config', method: 'GET', ...at };
  if (action === 'explain') return { name: 'model.explain', method: 'POST', ...at };
  return undefined;
};
