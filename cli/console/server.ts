import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage, MaasError } from '../../src/errors/index.ts';
import { type ConsoleBackend, ConsoleRequestError, HISTORY_PAGE } from './backend.ts';
import { type Bundle, buildBundle } from './bundle.ts';

export interface ConsoleServerOptions {
  backend: ConsoleBackend;
  /** 0 picks a free port */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** a bundle built before (tests share one); @default built now */
  bundle?: Bundle;
}

export interface ConsoleServer {
  url: string;
  port: number;
  bundle: Bundle;
  close(): Promise<void>;
}

/** The port is taken: most often by the console `npm start` already runs. */
export class ConsolePortInUseError extends MaasError {
  constructor(host: string, port: number) {
    super(
      'ConsolePortInUse',
      `port ${port} on ${host} is in use: the local stack's own console may already be at http://${host}:${port} — open it, or start this one with --port N (or MAAS_CONSOLE_PORT)`,
      { details: { port } },
    );
  }
}

/** JSON bodies of actions are small; uploads stream and are not bounded here. */
const MAX_JSON_BYTES = 1024 * 1024;
/** request bodies sent to a model (Lambda's synchronous payload limit) */
const MAX_INFER_BYTES = 6 * 1024 * 1024;
/** Mutations must carry it: a page of another origin cannot set it without a CORS preflight this server never answers. */
export const ACTION_HEADER = 'x-maas-console';

const STATUS_BY_CODE: Record<string, number> = {
  InvalidModelName: 400,
  InvalidConsoleRequest: 400,
  InvalidCanaryWeight: 400,
  NothingToRollBack: 409,
  InvalidArgument: 400,
  ModelNotFound: 404,
  VersionNotFound: 404,
  RegistryConflict: 409,
  CorruptRecord: 502,
  ApiUnreachable: 502,
  MissingCredentials: 502,
  StorageUnavailable: 503,
};

class HttpError extends MaasError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('ConsoleHttp', message);
  }
}

const send = (
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: Buffer | string,
  contentType: string,
  gzip?: Buffer,
): void => {
  const accepts = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const headers: Record<string, string> = {
    'content-type': contentType,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  };
  if (gzip !== undefined && accepts) {
    headers['content-encoding'] = 'gzip';
    headers.vary = 'accept-encoding';
    res.writeHead(status, headers).end(gzip);
    return;
  }
  res.writeHead(status, headers).end(body);
};

const sendJson = (req: IncomingMessage, res: ServerResponse, status: number, value: unknown) =>
  send(req, res, status, JSON.stringify(value), 'application/json; charset=utf-8');

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      throw new HttpError(413, `the request body is over ${limit} bytes: send less`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req, MAX_JSON_BYTES);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text === '' ? '{}' : text);
  } catch {
    throw new ConsoleRequestError('the request body is not JSON: send a JSON object');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConsoleRequestError('the request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

const versionOf = (value: unknown, what: string): number => {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    throw new ConsoleRequestError(
      `${what} must be a positive integer, got ${JSON.stringify(value)}`,
    );
  }
  return n;
};

const weightOf = (value: unknown): number => {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new ConsoleRequestError(
      `weight must be a number from 0 to 1 (0.25 = a quarter of the traffic), got ${JSON.stringify(value)}`,
    );
  }
  return n;
};

const UPLOAD_CHOICES: Record<string, readonly string[]> = {
  quantize: ['on', 'off'],
  promote: ['now', 'canary', 'manual'],
};

/** The same per-upload options `maas push` and `aws s3 cp --metadata` set. */
function uploadMetadata(query: URLSearchParams): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, choices] of Object.entries(UPLOAD_CHOICES)) {
    const value = query.get(name);
    if (value === null || value === '') continue;
    if (!choices.includes(value)) {
      throw new ConsoleRequestError(
        `${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`,
      );
    }
    metadata[`maas-${name}`] = value;
  }
  const weight = query.get('weight');
  if (weight !== null && weight !== '') metadata['maas-canary-weight'] = String(weightOf(weight));
  return metadata;
}

/** The console's requests: `/api/...` JSON, `/metrics`, and the page for every other GET. */
async function route(
  backend: ConsoleBackend,
  bundle: Bundle,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://console');
  const path = url.pathname;
  const method = req.method ?? 'GET';

  if (method === 'GET' && (path === '/app.js' || path === '/app.css')) {
    const asset = bundle[path.slice(1) as 'app.js' | 'app.css'];
    send(req, res, 200, asset.body, asset.contentType, asset.gzip);
    return;
  }
  if (method === 'GET' && path === '/metrics') {
    const text = backend.metrics.prometheus?.();
    if (text === undefined) {
      throw new HttpError(
        404,
        backend.metrics.kind === 'cloudwatch'
          ? 'a deployed stack keeps its figures in CloudWatch: read them there (namespace Maas); /metrics serves the local stack’s figures only'
          : 'this console does not hold the local figures: read /metrics on the console `npm start` runs',
      );
    }
    send(req, res, 200, text, 'text/plain; version=0.0.4; charset=utf-8');
    return;
  }
  if (!path.startsWith('/api/')) {
    if (method !== 'GET' && method !== 'HEAD')
      throw new HttpError(405, `${method} ${path}: only GET serves the page`);
    const page = bundle['index.html'];
    send(req, res, 200, page.body, page.contentType, page.gzip);
    return;
  }

  if (method !== 'GET' && req.headers[ACTION_HEADER] !== '1') {
    throw new HttpError(
      403,
      `${method} ${path} needs the header ${ACTION_HEADER}: 1 (the console page sends it; other sites cannot)`,
    );
  }
  if (method === 'GET' && path === '/api/info') {
    sendJson(req, res, 200, backend.targetInfo());
    return;
  }
  if (method === 'GET' && path === '/api/models') {
    sendJson(req, res, 200, await backend.models());
    return;
  }
  const match = /^\/api\/models\/([^/]+)(?:\/([a-z-]+))?$/.exec(path);
  if (match === null) throw new HttpError(404, `no console route ${method} ${path}`);
  const model = decodeURIComponent(match[1] as string);
  const action = match[2];
  const q = url.searchParams;
  switch (`${method} ${action ?? ''}`) {
    case 'GET ':
      sendJson(req, res, 200, await backend.model(model));
      return;
    case 'GET history': {
      const limit = q.get('limit');
      sendJson(
        req,
        res,
        200,
        await backend.history(
          model,
          q.get('before') ?? undefined,
          limit === null ? HISTORY_PAGE : versionOf(limit, 'limit'),
        ),
      );
      return;
    }
    case 'GET example': {
      const version = q.get('version');
      sendJson(
        req,
        res,
        200,
        await backend.example(
          model,
          version === null || version === '' ? undefined : versionOf(version, 'version'),
        ),
      );
      return;
    }
    case 'GET metrics':
      sendJson(req, res, 200, await backend.modelMetrics(model));
      return;
    case 'GET outcome': {
      const key = q.get('key');
      const etag = q.get('etag');
      if (key === null || etag === null) {
        throw new ConsoleRequestError(
          'outcome needs ?key=...&etag=... as the upload answered them',
        );
      }
      const sinceMs = q.get('sinceMs');
      const afterKey = q.get('afterKey');
      sendJson(
        req,
        res,
        200,
        await backend.outcome(
          model,
          { sourceKey: key, etag },
          {
            ...(afterKey === null ? {} : { afterKey }),
            ...(sinceMs === null ? {} : { sinceMs: Number(sinceMs) }),
          },
        ),
      );
      return;
    }
    case 'POST promote': {
      const body = await readJson(req);
      sendJson(req, res, 200, await backend.promote(model, versionOf(body.version, 'version')));
      return;
    }
    case 'POST rollback': {
      const body = await readJson(req);
      const to = body.to === undefined || body.to === null ? undefined : versionOf(body.to, 'to');
      sendJson(req, res, 200, await backend.rollback(model, to));
      return;
    }
    case 'POST canary': {
      const body = await readJson(req);
      sendJson(req, res, 200, await backend.canary(model, weightOf(body.weight)));
      return;
    }
    case 'PUT samples': {
      const text = await readBody(req, MAX_INFER_BYTES);
      sendJson(req, res, 200, await backend.putSamples(model, q.get('file') ?? '', text));
      return;
    }
    case 'PUT upload': {
      const metadata = uploadMetadata(q);
      sendJson(req, res, 200, await backend.putModel(model, q.get('file') ?? '', req, metadata));
      return;
    }
    case 'POST infer':
    case 'POST explain': {
      const version = q.get('version');
      const body = await readBody(req, MAX_INFER_BYTES);
      const pinned = version === null || version === '' ? undefined : versionOf(version, 'version');
      sendJson(
        req,
        res,
        200,
        action === 'explain'
          ? await backend.explain(model, pinned, body)
          : await backend.infer(model, pinned, body),
      );
      return;
    }
    default:
      throw new HttpError(404, `no console route ${method} ${path}`);
  }
}

function explain(backend: ConsoleBackend, err: unknown): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  const code = err instanceof MaasError ? err.code : undefined;
  const status = (code === undefined ? undefined : STATUS_BY_CODE[code]) ?? 500;
  let text = errorMessage(err);
  if (code === 'StorageUnavailable') {
    const t = backend.target;
    text +=
      t.kind === 'local'
        ? ` — is the local stack running (S3 at ${t.s3Endpoint})? Start it with \`npm start\`.`
        : ` — is the stack in ${t.file} deployed, and do your AWS credentials reach bucket ${t.bucket}?`;
  }
  return { status, message: text };
}

/** Only this machine's names: a page reached through DNS rebinding must not drive the registry. */
const LOCAL_HOST = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/;

export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const bundle = options.bundle ?? (await buildBundle());
  const host = options.host ?? '127.0.0.1';
  const server: Server = createServer((req, res) => {
    if (!LOCAL_HOST.test(req.headers.host ?? '')) {
      sendJson(req, res, 421, {
        error: `the console answers only to 127.0.0.1 or localhost, not ${JSON.stringify(req.headers.host ?? '')}`,
      });
      return;
    }
    route(options.backend, bundle, req, res).catch((err: unknown) => {
      const { status, message } = explain(options.backend, err);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(req, res, status, { error: message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new ConsolePortInUseError(host, options.port) : err),
    );
    server.listen(options.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // The first listing opens the S3 connections and warms the code paths, so the first person to
  // open the page does not wait for that; its errors are the page's to show, not this start's.
  void options.backend.models().catch(() => undefined);
  return {
    url: `http://${host}:${port}`,
    port,
    bundle,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
