import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';

const homes: string[] = [];
const stacks: LocalStack[] = [];

const stackOn = async (consolePort: number): Promise<LocalStack> => {
  const home = await mkdtemp(join(tmpdir(), 'maas-stack-console-'));
  homes.push(home);
  const stack = await startLocalStack({
    home,
    s3Port: 0,
    bucket: 'maas-models',
    httpPort: 0,
    workers: 1,
    consolePort,
    ingest: { onOutput: () => {} },
    onApiOutput: () => {},
  });
  stacks.push(stack);
  return stack;
};

afterAll(async () => {
  for (const stack of stacks) await stack.close();
  for (const home of homes) await rm(home, { recursive: true, force: true });
});

describe('the local stack with its console', () => {
  it('serves the console beside the API, reading the guard figures', async () => {
    const stack = await stackOn(0);
    expect(stack.urls.console).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const info = (await (await fetch(`${stack.urls.console}/api/info`)).json()) as Record<
      string,
      unknown
    >;
    expect(info).toMatchObject({ kind: 'local', api: stack.urls.api, metrics: 'local' });
    stack.guard.onOutput(
      JSON.stringify({
        _aws: {
          Timestamp: Date.now(),
          CloudWatchMetrics: [
            {
              Namespace: 'Maas',
              Dimensions: [['Model', 'Version']],
              Metrics: [{ Name: 'Requests', Unit: 'Count' }],
            },
          ],
        },
        Model: 'iris',
        Version: '1',
        Requests: 1,
      }),
    );
    const text = await (await fetch(`${stack.urls.console}/metrics`)).text();
    expect(text).toContain('maas_requests_total{model="iris",version="1"} 1');
  });

  it('runs without a console when its port is taken, and says why', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const stack = await stackOn(port);
      expect(stack.urls.console).toBeUndefined();
      expect(stack.consoleProblem).toContain(`port ${port} on 127.0.0.1 is in use`);
      expect((await fetch(`${stack.urls.api}/v2/health/live`)).status).toBe(200);
    } finally {
      taken.close();
    }
  });
});
