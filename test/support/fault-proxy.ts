import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { mulberry32 } from '../../src/util/index.ts';

/** What a request looks like to a fault's filter: the S3 key is the path after the bucket. */
export interface RequestInfo {
  method: string;
  /** the URL path, decoded, e.g. `/maas-models/registry/iris/1/model.onnx` */
  path: string;
}

/**
 * A storage fault, applied to each matching request with probability `rate`:
 * - `delay`: forwarded after `ms`
 * - `drop`: the connection is destroyed before any answer (a network cut, a dead endpoint)
 * - `status`: answered by the proxy with this status and S3's XML error body (500 InternalError,
 *   503 SlowDown)
 * - `truncate`: forwarded, but the response body is cut after `bytes` bytes and the connection
 *   destroyed, while its headers still announce the full length
 */
export type FaultKind =
  | { kind: 'delay'; ms: number }
  | { kind: 'drop' }
  | { kind: 'status'; status: number }
  | { kind: 'truncate'; bytes: number };

export type Fault = FaultKind & {
  /** share of matching requests that get the fault. @default 1 */
  rate?: number;
  /** which requests it applies to. @default every request */
  match?: (request: RequestInfo) => boolean;
};

export interface FaultStats {
  requests: number;
  /** requests faulted, by kind */
  faulted: Record<FaultKind['kind'], number>;
}

export interface FaultProxy {
  /** `http://127.0.0.1:port`: point an S3 client here instead of at the store */
  readonly endpoint: string;
  /** replaces the active faults (none: forward everything), effective for the next request */
  set(...faults: Fault[]): void;
  clear(): void;
  readonly stats: FaultStats;
  close(): Promise<void>;
}

const S3_ERRORS: Readonly<Record<number, string>> = {
  500: 'InternalError',
  502: 'BadGateway',
  503: 'SlowDown',
};

const errorXml = (status: number): string => {
  const code = S3_ERRORS[status] ?? 'ServiceUnavailable';
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>injected by the fault proxy</Message>` +
    '<RequestId>FAULT</RequestId></Error>'
  );
};

/**
 * An HTTP proxy in front of an S3 endpoint that injects faults switchable at run time, so tests
 * can take the model store down, make it flaky or slow, or cut its answers short, and bring it
 * back, while the code under test talks to it through its ordinary S3 client.
 */
export async function startFaultProxy(options: {
  /** the S3 endpoint to forward to, e.g. the local S3's `endpoint` */
  target: string;
  /** @default 0 (a free port) */
  port?: number;
  /**
   * draws for `rate`. @default a fixed-seed generator, so a failing run can be replayed with the
   * same draws (Math.random made one episode flake once in a helper's run)
   */
  random?: () => number;
}): Promise<FaultProxy> {
  const target = new URL(options.target);
  const random = options.random ?? mulberry32(0x5eed);
  let faults: Fault[] = [];
  const stats: FaultStats = {
    requests: 0,
    faulted: { delay: 0, drop: 0, status: 0, truncate: 0 },
  };

  const pick = (info: RequestInfo): FaultKind | undefined => {
    for (const fault of faults) {
      if (fault.match !== undefined && !fault.match(info)) continue;
      if (random() < (fault.rate ?? 1)) return fault;
    }
    return undefined;
  };

  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    truncateAt: number | undefined,
  ): void => {
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (truncateAt === undefined) {
          answer.pipe(res);
          return;
        }
        // Headers and the first bytes must reach the client before the cut, or it sees a
        // connection that died before answering (a drop) instead of a body cut short.
        res.flushHeaders();
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          const room = truncateAt - sent;
          sent += chunk.byteLength;
          if (sent < truncateAt) {
            res.write(chunk);
            return;
          }
          answer.destroy();
          const cut = () => res.socket?.destroy();
          if (room > 0) res.write(chunk.subarray(0, room), cut);
          else cut();
        });
        answer.on('end', () => res.end());
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  };

  const server = createServer((req, res) => {
    stats.requests += 1;
    const info: RequestInfo = {
      method: req.method ?? 'GET',
      path: decodeURIComponent(new URL(req.url ?? '/', 'http://proxy').pathname),
    };
    const fault = pick(info);
    if (fault !== undefined) stats.faulted[fault.kind] += 1;
    switch (fault?.kind) {
      case undefined:
        return forward(req, res, undefined);
      case 'delay':
        void sleep(fault.ms).then(() => forward(req, res, undefined));
        return;
      case 'drop':
        req.socket.destroy();
        return;
      case 'status': {
        // drain the request first, as S3 does, so the client sees the answer and not a reset
        req.resume();
        req.once('end', () => {
          const body = errorXml(fault.status);
          res.writeHead(fault.status, {
            'content-type': 'application/xml',
            'content-length': String(Buffer.byteLength(body)),
          });
          res.end(body);
        });
        return;
      }
      case 'truncate':
        return forward(req, res, fault.bytes);
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    set(...next) {
      faults = next;
    },
    clear() {
      faults = [];
    },
    stats,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Matches requests for keys under a prefix (after the bucket), optionally by method. */
export const keyMatch =
  (bucket: string, pattern: RegExp, methods?: readonly string[]) =>
  ({ method, path }: RequestInfo): boolean =>
    (methods === undefined || methods.includes(method)) &&
    path.startsWith(`/${bucket}/`) &&
    pattern.test(path.slice(bucket.length + 2));
