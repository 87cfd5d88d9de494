import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalApi, startLocalApi } from '../../../local/http/index.ts';

const HANDLER = fileURLToPath(new URL('./fixtures/handler.ts', import.meta.url));
const KiB = 1024;
const BUDGET = 1024 * KiB;
const BODY = 400 * KiB;

let api: LocalApi;
beforeAll(async () => {
  api = await startLocalApi({
    port: 0,
    handler: { path: HANDLER },
    workers: 1,
    maxBodyBytes: 512 * KiB,
    maxBodyBytesInFlight: BUDGET,
  });
}, 60_000);
afterAll(async () => {
  await api?.close();
});

/** a POST that sends its headers and the first `sent` bytes of its body, then waits */
const slowPost = (headers: Record<string, string>, sent: number) => {
  const socket: Socket = connect(api.port, '127.0.0.1');
  let answer = '';
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString();
  });
  socket.on('error', () => undefined);
  const head = Object.entries({ host: 'localhost', ...headers })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.write(`POST /echo HTTP/1.1\r\n${head}\r\n`);
  if (sent > 0) {
    const chunk = Buffer.alloc(sent, 0x61);
    socket.write(
      headers['transfer-encoding'] === 'chunked'
        ? Buffer.concat([Buffer.from(`${sent.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
        : chunk,
    );
  }
  return {
    status: async (): Promise<number> => {
      for (let i = 0; i < 200 && !answer.includes('\r\n'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 0);
    },
    answer: () => answer,
    finish: (rest: number) => {
      socket.write(Buffer.alloc(rest, 0x61));
    },
    close: () => socket.destroy(),
  };
};

describe('request body bytes held across connections', () => {
  it('answers 503 early once declared bodies fill the budget, and takes requests again after', async () => {
    const first = slowPost({ 'content-length': String(BODY) }, 1000);
    const second = slowPost({ 'content-length': String(BODY) }, 1000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const third = slowPost({ 'content-length': String(BODY) }, 0);

    expect(await third.status()).toBe(503);
    expect(third.answer()).toContain('MAAS_MAX_BODY_BYTES_IN_FLIGHT');
    expect(third.answer().toLowerCase()).toContain('retry-after: 1');

    first.finish(BODY - 1000);
    second.finish(BODY - 1000);
    expect(await first.status()).toBe(200);
    expect(await second.status()).toBe(200);
    first.close();
    second.close();
    third.close();
    const after = await fetch(`${api.url}/echo`, { method: 'POST', body: Buffer.alloc(BODY) });
    expect(after.status).toBe(200);
  });

  it('counts chunked bodies as their bytes arrive', async () => {
    const holders = [1, 2, 3].map(() => slowPost({ 'transfer-encoding': 'chunked' }, BODY));
    for (let i = 0; i < 500 && !holders.some((h) => h.answer() !== ''); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const statuses = holders.map((h) => /^HTTP\/1\.1 (\d+)/.exec(h.answer())?.[1]);
    for (const h of holders) h.close();

    expect(statuses.filter((s) => s === '503')).toHaveLength(1);
  });
});
