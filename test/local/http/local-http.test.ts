import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalApi, type LocalApiOptions, startLocalApi } from '../../../local/http/index.ts';
import { tempDir } from '../../support/runtime-fixtures.ts';

const HANDLER = fileURLToPath(new URL('./fixtures/handler.ts', import.meta.url));
const MAX_BODY = 64 * 1024;

const apis: LocalApi[] = [];
let flags: { dir: string; remove(): Promise<void> };
let nextFlag = 0;

const start = async (options: LocalApiOptions = {}): Promise<LocalApi> => {
  const api = await startLocalApi({ port: 0, handler: { path: HANDLER }, ...options });
  apis.push(api);
  return api;
};

/** a flag file path; `/hold?flag=` holds an instance until it exists */
const flag = (): string => join(flags.dir, `flag-${nextFlag++}`);
const release = (path: string): Promise<void> => writeFile(path, '');

/** starts `/hold` and resolves once an instance is running it, with its eventual status */
const hold = async (url: string, flagPath: string): Promise<{ done: Promise<Response> }> => {
  const started = `${flagPath}.started`;
  const query = new URLSearchParams({ flag: flagPath, started });
  const done = fetch(`${url}/hold?${query}`);
  while (!existsSync(started)) await new Promise((resolve) => setTimeout(resolve, 5));
  return { done };
};

/** POSTs `size` bytes with chunked encoding (no content-length), as a streaming client would */
const postChunked = (url: string, size: number): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(16 * 1024, 1);
    for (let sent = 0; sent < size; sent += chunk.byteLength) req.write(chunk);
    req.end();
  });

/** asks with `Expect: 100-continue` and sends the body only if the server invites it */
const postExpecting = (url: string, size: number): Promise<{ status: number; bodySent: boolean }> =>
  new Promise((resolve, reject) => {
    let bodySent = false;
    const req = request(url, {
      method: 'POST',
      headers: { expect: '100-continue', 'content-length': String(size) },
    });
    req.on('continue', () => {
      bodySent = true;
      req.end(Buffer.alloc(size));
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bodySent }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });

interface Exchange {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  socket: Socket;
  reusedSocket: boolean;
}

/** one request through `agent`, with the socket it went out on */
const exchange = (
  url: string,
  agent: Agent,
  options: { method?: string; body?: Buffer } = {},
): Promise<Exchange> =>
  new Promise((resolve, reject) => {
    const req = request(url, { agent, method: options.method ?? 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          socket: req.socket as Socket,
          reusedSocket: req.reusedSocket,
        }),
      );
    });
    req.on('error', reject);
    req.end(options.body);
  });

beforeAll(async () => {
  flags = await tempDir('maas-local-http-');
});

afterAll(async () => {
  await Promise.all(apis.map((api) => api.close()));
  await flags.remove();
});

describe('local HTTP API', () => {
  let api: LocalApi;
  const logged: string[] = [];
  beforeAll(async () => {
    api = await start({
      workers: 2,
      maxBodyBytes: MAX_BODY,
      env: { MAAS_TEST_VALUE: 'from-env' },
      onOutput: (line) => logged.push(line),
    });
  });

  it('hands the handler a payload 2.0 event with text bodies as they are', async () => {
    const res = await fetch(`${api.url}/echo?a=1&a=2&b=x%20y`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Custom': 'one' },
      body: '{"inputs":[]}',
    });
    const { event, env } = (await res.json()) as { event: APIGatewayProxyEventV2; env: string };

    expect(res.status).toBe(200);
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: '$default',
      rawPath: '/echo',
      rawQueryString: 'a=1&a=2&b=x%20y',
      queryStringParameters: { a: '1,2', b: 'x y' },
      body: '{"inputs":[]}',
      isBase64Encoded: false,
      requestContext: { http: { method: 'POST', path: '/echo' }, stage: '$default' },
    });
    expect(event.headers['x-custom']).toBe('one');
    expect(event.requestContext.requestId).toBe(res.headers.get('apigw-requestid'));
    expect(res.headers.get('x-request-id')).toBe(event.requestContext.requestId);
    expect(env).toBe('from-env');
  });

  it('base64-encodes binary request bodies and decodes binary responses', async () => {
    const payload = Buffer.from([0, 159, 146, 150, 255, 10]);
    const echoed = await fetch(`${api.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: payload,
    });
    const { event } = (await echoed.json()) as { event: APIGatewayProxyEventV2 };
    const binary = await fetch(`${api.url}/binary`);

    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body ?? '', 'base64')).toEqual(payload);
    expect(binary.status).toBe(201);
    expect(binary.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await binary.arrayBuffer())).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('answers an unstructured result as a 200 JSON body', async () => {
    const res = await fetch(`${api.url}/plain`);

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ answer: 42 });
  });

  it('keeps serving on other instances while one is held by a slow request', async () => {
    const held = flag();
    const slow = await hold(api.url, held);

    const quick = await fetch(`${api.url}/plain`);
    await release(held);

    expect(quick.status).toBe(200);
    expect(await (await slow.done).text()).toBe('released');
  });

  it('answers a handler error with a 500 JSON error and keeps serving', async () => {
    const res = await fetch(`${api.url}/throw`);
    const body = (await res.json()) as { error: string };

    expect(res.status).toBe(500);
    expect(body.error).toContain('the handler failed on purpose');
    const requestId = res.headers.get('apigw-requestid');
    await expect
      .poll(() => logged.some((line) => line.startsWith(`ERROR Invoke Error ${requestId}`)))
      .toBe(true);
    expect((await fetch(`${api.url}/plain`)).status).toBe(200);
  });

  it('replaces an instance that dies, failing only the request it was serving', async () => {
    const res = await fetch(`${api.url}/exit`);

    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: string }).error).toContain('exited with code 3');
    const after = await Promise.all([1, 2, 3, 4].map(() => fetch(`${api.url}/plain`)));
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  it('refuses a body over the cap with 413, declared or streamed, and keeps serving', async () => {
    const declared = await fetch(`${api.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(MAX_BODY + 1),
    });
    const streamed = await postChunked(`${api.url}/echo`, MAX_BODY * 4);
    const expecting = await postExpecting(`${api.url}/echo`, MAX_BODY * 4);
    const invited = await postExpecting(`${api.url}/echo`, 10);

    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: string }).error).toContain(`${MAX_BODY}-byte cap`);
    expect(streamed.status).toBe(413);
    expect(expecting).toEqual({ status: 413, bodySent: false });
    expect(invited).toEqual({ status: 200, bodySent: true });
    expect((await fetch(`${api.url}/plain`)).status).toBe(200);
  });
});

describe('local HTTP API under load', () => {
  it('sheds requests with 429 when every instance is busy and the queue is full', async () => {
    const api = await start({ workers: 1, queueLimit: 0 });
    const held = flag();
    const slow = await hold(api.url, held);

    const shed = await fetch(`${api.url}/plain`);
    await release(held);

    expect(shed.status).toBe(429);
    expect(shed.headers.get('retry-after')).toBe('1');
    expect(((await shed.json()) as { error: string }).error).toContain('busy');
    expect((await slow.done).status).toBe(200);
    expect((await fetch(`${api.url}/plain`)).status).toBe(200);
  });

  it('sheds with 429 on a connection it keeps alive for the next request', async () => {
    const api = await start({ workers: 1, queueLimit: 0 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const held = flag();
    const slow = await hold(api.url, held);

    const shed = await exchange(`${api.url}/echo`, agent, {
      method: 'POST',
      body: Buffer.alloc(4096, 1),
    });
    await release(held);
    await slow.done;
    const served = await exchange(`${api.url}/plain`, agent);
    agent.destroy();

    expect(shed.status).toBe(429);
    expect(shed.headers['retry-after']).toBe('1');
    expect(shed.headers.connection).toBe('keep-alive');
    expect((JSON.parse(shed.body) as { error: string }).error).toContain('busy');
    expect(served.status).toBe(200);
    expect(served.reusedSocket).toBe(true);
    expect(served.socket).toBe(shed.socket);
  });

  it('refuses an over-cap body with 413 even while shedding, and survives aborted bodies', async () => {
    const api = await start({ workers: 1, queueLimit: 0, maxBodyBytes: MAX_BODY });
    const held = flag();
    const slow = await hold(api.url, held);

    const streamed = await postChunked(`${api.url}/echo`, MAX_BODY * 4);
    await new Promise<void>((resolve) => {
      const req = request(`${api.url}/echo`, {
        method: 'POST',
        headers: { 'content-length': String(MAX_BODY) },
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(Buffer.alloc(1024), () => req.destroy());
    });
    await release(held);

    expect(streamed.status).toBe(413);
    expect((await slow.done).status).toBe(200);
    expect((await fetch(`${api.url}/plain`)).status).toBe(200);
  });

  it('stops an invocation that runs past the timeout and serves the next on a fresh instance', async () => {
    const api = await start({ workers: 1, invokeTimeoutMs: 200 });

    const res = await fetch(`${api.url}/spin?ms=60000`);

    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: string }).error).toContain('200 ms');
    expect((await fetch(`${api.url}/plain`)).status).toBe(200);
  });

  it('fails to start with the reason when the handler cannot be loaded', async () => {
    await expect(
      startLocalApi({ port: 0, workers: 1, handler: { path: HANDLER, exportName: 'missing' } }),
    ).rejects.toThrow(/no function export named missing/);
  });
});
