import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { definedOnly, type LocalConfig, loadConfig } from '../../src/config/index.ts';
import {
  errorResponse,
  fromResult,
  type IncomingRequest,
  type OutgoingResponse,
  toEvent,
} from './event.ts';
import {
  type InvokeOutcome,
  type OutputListener,
  QueueFullError,
  WorkerPool,
} from './worker-pool.ts';

export { fromResult, type IncomingRequest, type OutgoingResponse, toEvent } from './event.ts';
export type { OutputListener } from './worker-pool.ts';

export interface LocalApiOptions
  extends Partial<
    Pick<
      LocalConfig,
      'workers' | 'queueLimit' | 'maxBodyBytes' | 'maxBodyBytesInFlight' | 'invokeTimeoutMs'
    >
  > {
  /** 0 picks a free port. @default `PORT`, else 3000 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** environment of the handler instances, over this process's own */
  env?: Record<string, string>;
  /** the Lambda handler to run. @default functions/predict/handler.ts, export `handler` */
  handler?: { path: string; exportName?: string };
  /** @default 'predict' */
  functionName?: string;
  /** the handler instances' log lines (EMF metrics among them); default: this process's stdout/stderr */
  onOutput?: OutputListener;
}

export interface LocalApi {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const DEFAULT_HANDLER = fileURLToPath(
  new URL('../../functions/predict/handler.ts', import.meta.url),
);
/** what the local instances tell the handler about their memory (Lambda's default size) */
const MEMORY_MB = 1769;

/**
 * The local API Gateway: turns HTTP requests into HTTP API payload 2.0 events, runs them through
 * handler instances in child processes (one request at a time each, like Lambda) and answers with
 * what the handler returned. Load beyond the instances and the queue is shed with 429 on the same
 * kept-alive connection, bodies over the cap get 413 before they are read (and the connection
 * closed), and a request whose body would take the bytes held across connections past their
 * budget gets 503 (docs/limits.md).
 */
export async function startLocalApi(options: LocalApiOptions = {}): Promise<LocalApi> {
  const env = { ...definedOnly(process.env), ...options.env };
  const settings: LocalConfig = {
    ...loadConfig(env).local,
    ...definedOnly({
      workers: options.workers,
      queueLimit: options.queueLimit,
      maxBodyBytes: options.maxBodyBytes,
      maxBodyBytesInFlight: options.maxBodyBytesInFlight,
      invokeTimeoutMs: options.invokeTimeoutMs,
    }),
  };
  // one body at the cap always fits
  const budget = new BodyBudget(Math.max(settings.maxBodyBytesInFlight, settings.maxBodyBytes));
  // Instances share the cores the way separate Lambda instances would each get their own.
  env.MAAS_INTRA_OP_THREADS ??= String(
    Math.max(1, Math.floor(availableParallelism() / settings.workers)),
  );
  env.AWS_LAMBDA_INITIALIZATION_TYPE ??= 'on-demand';
  const pool = new WorkerPool({
    size: settings.workers,
    queueLimit: settings.queueLimit,
    timeoutMs: settings.invokeTimeoutMs,
    env,
    init: {
      handlerUrl: pathToFileURL(options.handler?.path ?? DEFAULT_HANDLER).href,
      exportName: options.handler?.exportName ?? 'handler',
      functionName: options.functionName ?? 'predict',
      region: loadConfig(env).storage.region,
      memoryMb: MEMORY_MB,
    },
    ...(options.onOutput === undefined ? {} : { onOutput: options.onOutput }),
  });
  await pool.start();

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void serve(req, res, pool, settings, budget).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  };
  const server = createServer(onRequest);
  // `Expect: 100-continue` (curl sends it for large bodies): refuse an oversized body before the
  // client sends it, otherwise invite it.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared <= settings.maxBodyBytes && budget.fits(declared)) res.writeContinue();
    onRequest(req, res);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? settings.apiPort, options.host ?? '127.0.0.1', () => resolve());
    });
  } catch (err) {
    await pool.close();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.close();
    },
  };
}

/**
 * Request body bytes held across every connection: what is being read, waits in the queue or is
 * being served. Without it, 150 clients each sending 5 MiB took the API from 198 MB to 928 MB.
 */
class BodyBudget {
  private held = 0;

  constructor(readonly limit: number) {}

  fits(bytes: number): boolean {
    return this.held + bytes <= this.limit;
  }

  /** takes `bytes` if they fit; the caller gives back what it took once the request is over */
  take(bytes: number): boolean {
    if (!this.fits(bytes)) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
  }
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  pool: WorkerPool,
  settings: LocalConfig,
  budget: BodyBudget,
): Promise<void> {
  const requestId = randomUUID();
  const receivedAt = new Date();
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > settings.maxBodyBytes) {
    return reject(req, res, tooLarge(settings, requestId));
  }
  if (pool.full) {
    // Closing instead would cost a shed client a reconnect on every retry, which under load
    // slowed the refusals to seconds and halved the requests served; a body within the cap is
    // cheap to skip over.
    const drained = await consumeBody(req, settings.maxBodyBytes, () => undefined);
    if (drained === undefined) return reject(req, res, tooLarge(settings, requestId));
    return shed(req, res, requestId);
  }
  let taken = 0;
  // the bytes are held until the answer is out (or the client went away)
  res.once('close', () => budget.give(taken));
  const take = (bytes: number): boolean => {
    if (!budget.take(bytes)) return false;
    taken += bytes;
    return true;
  };
  if (!take(Number.isSafeInteger(declared) && declared > 0 ? declared : 0)) {
    return refuse(req, res, overloaded(budget, requestId));
  }
  const body = await readBody(
    req,
    settings.maxBodyBytes,
    (size) => size <= taken || take(size - taken),
  );
  if (body === 'over-budget') return refuse(req, res, overloaded(budget, requestId));
  if (body === undefined) return reject(req, res, tooLarge(settings, requestId));
  const request: IncomingRequest = {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    rawHeaders: req.rawHeaders,
    body,
    sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
    requestId,
    receivedAt,
  };
  let outcome: InvokeOutcome;
  try {
    outcome = await pool.invoke(requestId, toEvent(request));
  } catch (err) {
    if (err instanceof QueueFullError) return shed(req, res, requestId);
    throw err;
  }
  send(res, toResponse(outcome, requestId));
}

const toResponse = (outcome: InvokeOutcome, requestId: string): OutgoingResponse => {
  switch (outcome.kind) {
    case 'result':
      try {
        return fromResult(outcome.result, requestId);
      } catch {
        return errorResponse(
          502,
          `the handler returned a malformed response (request id ${requestId})`,
          requestId,
        );
      }
    case 'error':
      return errorResponse(
        500,
        `the handler failed (request id ${requestId}): ${outcome.error.message}; its log has the stack`,
        requestId,
      );
    case 'timeout':
      return errorResponse(
        504,
        `the handler ran longer than ${outcome.timeoutMs} ms and was stopped (request id ${requestId}); ` +
          'send a smaller request or raise MAAS_INVOKE_TIMEOUT_MS',
        requestId,
      );
    case 'crashed':
      return errorResponse(
        502,
        `the handler instance failed (request id ${requestId}): ${outcome.error.message}`,
        requestId,
      );
  }
};

/**
 * How long a connection that was just shed goes unread. A client that retries at once instead of
 * after `Retry-After` would otherwise turn its connection into a loop of 429s that takes the
 * event loop from the requests being served (Iris at 512 connections: 160 req/s served instead
 * of 4500); its next request simply waits in the socket, and clients that do wait never notice.
 */
const SHED_COOL_DOWN_MS = 100;

/** answers 429 on the kept-alive connection, then leaves it unread for the cool-down */
const shed = (req: IncomingMessage, res: ServerResponse, requestId: string): void => {
  send(res, busy(requestId));
  res.once('finish', () => {
    const socket: Socket = req.socket;
    socket.pause();
    setTimeout(() => socket.resume(), SHED_COOL_DOWN_MS).unref();
  });
};

const tooLarge = (settings: LocalConfig, requestId: string): OutgoingResponse =>
  errorResponse(
    413,
    `request body is over the ${settings.maxBodyBytes}-byte cap (Lambda's synchronous payload ` +
      'limit); send fewer elements, or binary tensor data instead of JSON',
    requestId,
  );

const overloaded = (budget: BodyBudget, requestId: string): OutgoingResponse => {
  const response = errorResponse(
    503,
    `the local API already holds ${budget.limit} bytes of request bodies (MAAS_MAX_BODY_BYTES_IN_FLIGHT); ` +
      'retry in a moment',
    requestId,
  );
  response.headers['retry-after'] = '1';
  return response;
};

const busy = (requestId: string): OutgoingResponse => {
  const response = errorResponse(
    429,
    'every handler instance is busy and the request queue is full; retry in a moment',
    requestId,
  );
  response.headers['retry-after'] = '1';
  return response;
};

/**
 * The whole body; `undefined` as soon as it grows past `max` bytes, `'over-budget'` as soon as
 * `hold` refuses the bytes read so far (a chunked body announces no length to reserve up front).
 */
const readBody = async (
  req: IncomingMessage,
  max: number,
  hold: (size: number) => boolean,
): Promise<Buffer | undefined | 'over-budget'> => {
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  const read = await consumeBody(req, max, (chunk) => {
    size += chunk.byteLength;
    if (refused || !hold(size)) {
      refused = true;
      return false;
    }
    chunks.push(chunk);
    return true;
  });
  if (refused) return 'over-budget';
  return read === undefined ? undefined : Buffer.concat(chunks, read);
};

/**
 * Hands every chunk of the body to `onChunk` and resolves with its size, or with `undefined` as
 * soon as it grows past `max` bytes or `onChunk` returns false (the rest is left unread).
 */
const consumeBody = (
  req: IncomingMessage,
  max: number,
  onChunk: (chunk: Buffer) => boolean | undefined,
): Promise<number | undefined> =>
  new Promise((resolve, reject) => {
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size > max || onChunk(chunk) === false) {
        req.off('data', onData);
        resolve(undefined);
      }
    };
    req.on('data', onData);
    req.once('end', () => resolve(size));
    req.once('error', reject);
    req.once('close', () => {
      if (!req.complete) reject(new Error('the client closed the connection mid-body'));
    });
  });

/**
 * Answers at once, then reads and drops the rest of the body before the connection closes: nothing
 * is held, and the client, still sending, reads its answer instead of a reset (closing a socket
 * with unread bytes resets it, and the reset can destroy the answer in flight).
 */
const refuse = (req: IncomingMessage, res: ServerResponse, response: OutgoingResponse): void => {
  response.headers.connection = 'close';
  send(res, response);
  req.resume();
};

const send = (res: ServerResponse, response: OutgoingResponse): void => {
  res.writeHead(response.statusCode, {
    ...response.headers,
    'content-length': String(response.body.byteLength),
  });
  res.end(response.body);
};

/**
 * Answers without reading (the rest of) the body, then closes the connection: reading a body we
 * are refusing would spend the very resources the refusal protects.
 */
const reject = (req: IncomingMessage, res: ServerResponse, response: OutgoingResponse): void => {
  response.headers.connection = 'close';
  send(res, response);
  res.once('finish', () => req.socket.destroySoon());
};
