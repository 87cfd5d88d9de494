import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type Bundle,
  buildBundle,
  type RunningConsole,
  startConsole,
} from '../../../cli/console/index.ts';
import type {
  HistoryPage,
  MetricsResponse,
  ModelResponse,
  ModelsResponse,
} from '../../../cli/console/types.ts';
import { LocalMetricsStore } from '../../../local/guard/metrics-store.ts';
import { alarmDefinitions, promoteVersion } from '../../../src/guard/index.ts';
import { keys, Registry } from '../../../src/registry/index.ts';
import { commitVersion, modelWith } from '../../support/guard-fixtures.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';
import { overwrite } from '../../support/registry.ts';

/** The local stack's rules: 1-second periods */
const definitions = alarmDefinitions({ timeScale: 1 / 60, overrides: {} }).map((d) => ({
  ...d,
  minRequests: 5,
}));

let s3: TestS3;
let registry: Registry;
let bundle: Bundle;
let store: LocalMetricsStore;
let local: RunningConsole;

const get = async <T>(path: string, base = local.url): Promise<{ status: number; body: T }> => {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, body: (await response.json()) as T };
};

const post = async <T>(
  path: string,
  body: unknown,
  headers: Record<string, string> = { 'x-maas-console': '1' },
): Promise<{ status: number; body: T }> => {
  const response = await fetch(`${local.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
};

const emf = (model: string, version: number, at: number, failed: boolean) => ({
  namespace: 'Maas',
  timestamp: at,
  dimensionSets: [['Model', 'Version']],
  dimensions: { Model: model, Version: String(version) },
  values: { Requests: [1], ModelErrors: [failed ? 1 : 0], Latency: [failed ? 3 : 2] },
  units: {},
});

beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
  bundle = await buildBundle();
  store = new LocalMetricsStore(60_000);
  // healthy: production only; canary: a candidate baking; failing: a candidate breaching
  await modelWith(registry, 'healthy', 1, { production: 1 });
  const bakeUntil = new Date(Date.now() + 3_600_000).toISOString();
  await modelWith(registry, 'canary', 2, {
    production: 1,
    candidate: { version: 2, weight: 0.1, bakeUntil },
  });
  await modelWith(registry, 'failing', 2, {
    production: 1,
    candidate: { version: 2, weight: 0.5, bakeUntil },
  });
  // rejected only: one upload refused, nothing registered
  await registry.recordRejection({
    model: 'refused',
    sourceKey: 'incoming/refused/bad.onnx',
    etag: 'e1',
    reason: 'not an ONNX model: protobuf decoding failed',
    code: 'InvalidModel',
  });
  // a corrupt manifest beside a good version
  await commitVersion(registry, 'corrupt');
  await commitVersion(registry, 'corrupt');
  await registry.updateAliases('corrupt', () => ({
    model: 'corrupt',
    production: 1,
    knownGood: [],
    rolledBack: [],
    updatedAt: new Date().toISOString(),
  }));
  await overwrite(s3.store, keys.manifest('corrupt', 2), '{"model": "corrupt", "vers');
  // a model with unreadable aliases
  await commitVersion(registry, 'garbled');
  await overwrite(s3.store, keys.aliases('garbled'), 'not json');
  // 1,000 history records (and one corrupt record among them)
  await commitVersion(registry, 'busy');
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < 999; i++) {
    pending.push(
      registry.appendHistory({
        model: 'busy',
        event: 'registered',
        version: 1,
        at: new Date(t0 + i * 1000).toISOString(),
        actor: 'ingest',
        reason: `record ${i}`,
      }),
    );
    if (pending.length >= 50) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await overwrite(s3.store, keys.historyRecord('busy', t0 + 500_500, 'broken'), '{ nope');

  // failing v2 breaches the error rule in the last complete periods; v1 stays clean
  const now = Date.now();
  for (let second = 1; second <= 4; second++) {
    for (let i = 0; i < 10; i++) {
      store.add(emf('failing', 2, now - second * 1000 + i, i < 8), now);
      store.add(emf('failing', 1, now - second * 1000 + i, false), now);
    }
  }
  local = await startConsole({
    target: {
      kind: 'local',
      s3Endpoint: s3.s3.endpoint,
      bucket: s3.s3.bucket,
      region: 'us-east-1',
      apiUrl: 'http://127.0.0.1:9',
    },
    port: 0,
    definitions,
    localStore: store,
    bundle,
  });
}, 120_000);

afterAll(async () => {
  await local?.close();
  await s3?.cleanup();
});

describe('console server, local stack', () => {
  it('lists every model with a status and a reason', async () => {
    const { status, body } = await get<ModelsResponse>('/api/models');
    expect(status).toBe(200);
    const byName = Object.fromEntries(body.models.map((m) => [m.name, m]));
    expect(byName.healthy?.status).toBe('healthy');
    expect(byName.canary).toMatchObject({ status: 'canary baking', production: 1 });
    expect(byName.canary?.candidate).toMatchObject({ version: 2, weight: 0.1 });
    expect(byName.failing?.status).toBe('breaching');
    expect(byName.failing?.statusDetail).toMatch(/^v2: model-errors \d of 5 periods/);
    expect(byName.failing?.rps).toBeGreaterThan(0);
    expect(byName.garbled?.status).toBe('unreadable');
    expect(byName.garbled?.statusDetail).toContain('registry/garbled/aliases.json');
    expect(body.target).toMatchObject({ kind: 'local', metrics: 'local', prometheus: true });
  });

  it('shows a model whose only upload was rejected, saying so', async () => {
    const model = await get<ModelResponse>('/api/models/refused');
    expect(model.status).toBe(200);
    expect(model.body.versions).toEqual([]);
    expect(model.body.status).toBe('no version');
    expect(model.body.statusDetail).toBe(
      'last upload rejected: not an ONNX model: protobuf decoding failed',
    );
    const history = await get<HistoryPage>('/api/models/refused/history');
    expect(history.body.entries[0]?.record).toMatchObject({
      event: 'rejected',
      reason: 'not an ONNX model: protobuf decoding failed',
    });
  });

  it('shows the readable versions of a model with a corrupt manifest and names the broken one', async () => {
    const { status, body } = await get<ModelResponse>('/api/models/corrupt');
    expect(status).toBe(200);
    expect(body.versions.map((v) => [v.version, v.manifest !== undefined])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(body.versions[1]?.error).toContain('registry/corrupt/2/manifest.json');
    expect(body.problems[0]).toMatch(/^v2: .*not a valid registry record/);
  });

  it('pages a history of 1,000 records, newest first, an unreadable record shown as such', async () => {
    const first = await get<HistoryPage>('/api/models/busy/history');
    expect(first.body.total).toBe(1000);
    expect(first.body.entries).toHaveLength(50);
    expect(first.body.entries[0]?.record?.reason).toBe('record 998');
    let before = first.body.nextBefore;
    const seen = [...first.body.entries];
    while (before !== undefined) {
      const page = await get<HistoryPage>(
        `/api/models/busy/history?limit=200&before=${encodeURIComponent(before)}`,
      );
      expect(page.body.entries.length).toBeLessThanOrEqual(200);
      seen.push(...page.body.entries);
      before = page.body.nextBefore;
    }
    expect(seen).toHaveLength(1000);
    expect(new Set(seen.map((e) => e.key)).size).toBe(1000);
    const broken = seen.filter((e) => e.record === undefined);
    expect(broken).toHaveLength(1);
    expect(broken[0]?.error).toMatch(/^unreadable: /);
    expect(seen.at(-1)?.record?.reason).toBe('record 0');
  });

  it('charts each version and draws the guard thresholds', async () => {
    const { body } = await get<MetricsResponse>('/api/models/failing/metrics');
    expect(body.stepMs).toBe(1000);
    const v2 = body.versions.find((s) => s.version === 2);
    expect(v2?.requests.reduce((a, b) => a + b, 0)).toBe(40);
    expect(v2?.errorRate.filter((r) => r !== null)).toEqual([0.8, 0.8, 0.8, 0.8]);
    expect(body.rules).toEqual([
      expect.objectContaining({ rule: 'model-errors', series: 'errorRate', threshold: 0.05 }),
      expect.objectContaining({ rule: 'latency', series: 'p99', threshold: 2000 }),
      expect.objectContaining({ rule: 'slow', series: 'p50', threshold: 2000 }),
    ]);
    expect(body.health.map((h) => h.version)).toEqual([1, 2]);
  });

  it('serves the local figures as Prometheus text at /metrics', async () => {
    const response = await fetch(`${local.url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await response.text();
    expect(text).toContain('maas_requests_total{model="failing",version="2"} 40');
    expect(text).toContain('maas_model_errors_total{model="failing",version="2"} 32');
  });

  it('promotes as the CLI does: the same aliases and the same history record, by the console', async () => {
    await modelWith(registry, 'twin-cli', 2, { production: 1 });
    await modelWith(registry, 'twin-page', 2, { production: 1 });
    await promoteVersion(registry, 'twin-cli', 2);
    const answer = await post<{ message: string }>('/api/models/twin-page/promote', {
      version: 2,
    });
    expect(answer).toEqual({
      status: 200,
      body: expect.objectContaining({ message: 'v2 is production (was v1)' }),
    });
    const [cli] = (await registry.history('twin-cli')).filter((r) => r.event === 'promoted');
    const [page] = (await registry.history('twin-page')).filter((r) => r.event === 'promoted');
    const strip = ({ at: _at, model: _model, actor: _actor, ...rest }: Record<string, unknown>) =>
      rest;
    expect(strip({ ...page })).toEqual(strip({ ...cli }));
    expect(page?.actor).toBe('console');
    const aliases = (await registry.getAliases('twin-page'))?.aliases;
    expect(aliases).toMatchObject({ production: 2, knownGood: [1] });
  });

  it('rolls back and changes the canary weight, each recorded in history', async () => {
    await modelWith(registry, 'steer', 2, {
      production: 1,
      candidate: {
        version: 2,
        weight: 0.1,
        bakeUntil: new Date(Date.now() + 60_000).toISOString(),
      },
    });
    const weight = await post<{ message: string }>('/api/models/steer/canary', { weight: 0.3 });
    expect(weight.body.message).toBe('candidate v2 now takes 30 % of the traffic (was 10 %)');
    expect((await registry.getAliases('steer'))?.aliases.candidate?.weight).toBe(0.3);
    const rolled = await post<{ message: string }>('/api/models/steer/rollback', {});
    expect(rolled.body.message).toBe('candidate v2 dropped and marked rolled back');
    const events = (await registry.history('steer')).map((r) => [r.event, r.actor]);
    expect(events).toEqual([
      ['candidate', 'console'],
      ['rolled-back', 'console'],
    ]);
    const nothing = await post<{ error: string }>('/api/models/steer/canary', { weight: 0.5 });
    expect(nothing.status).toBe(400);
    expect(nothing.body.error).toContain('has no candidate version to weigh');
  });

  it('uploads samples, then the model (multipart when large) with the per-upload options', async () => {
    const samples = await fetch(`${local.url}/api/models/big/samples?file=big.onnx`, {
      method: 'PUT',
      headers: { 'x-maas-console': '1' },
      body: '[{"inputs": []}]',
    });
    expect(samples.status).toBe(200);
    const bytes = new Uint8Array(9 * 1024 * 1024 + 123).map((_, i) => (i * 7) % 251);
    const response = await fetch(
      `${local.url}/api/models/big/upload?file=big.onnx&quantize=off&promote=canary&weight=0.25`,
      { method: 'PUT', headers: { 'x-maas-console': '1' }, body: bytes },
    );
    const uploaded = (await response.json()) as {
      key: string;
      etag: string;
      bytes: number;
      sinceMs?: number;
    };
    expect(response.status).toBe(200);
    expect(uploaded).toMatchObject({ key: 'incoming/big/big.onnx', bytes: bytes.length });
    expect(uploaded.sinceMs).toBeTypeOf('number');
    const stored = await s3.store.get('incoming/big/big.onnx');
    expect(Buffer.from(stored?.body ?? []).equals(Buffer.from(bytes))).toBe(true);
    expect(stored?.metadata).toMatchObject({
      'maas-quantize': 'off',
      'maas-promote': 'canary',
      'maas-canary-weight': '0.25',
    });
    expect(
      new TextDecoder().decode((await s3.store.get('incoming/big/big.samples.json'))?.body),
    ).toBe('[{"inputs": []}]');
    // ingest is not running here: the page is told nothing has been decided yet
    const outcome = await get<{ outcome?: unknown }>(
      `/api/models/big/outcome?key=${uploaded.key}&etag=${uploaded.etag}&sinceMs=${uploaded.sinceMs}`,
    );
    expect(outcome).toEqual({ status: 200, body: {} });
  });

  it('refuses bad input with a 4xx saying what to send instead', async () => {
    const cases: [string, unknown, number, RegExp][] = [
      ['/api/models/steer/canary', { weight: 2 }, 400, /weight must be a number from 0 to 1/],
      ['/api/models/steer/promote', { version: 'x' }, 400, /version must be a positive integer/],
      ['/api/models/steer/promote', { version: 9 }, 404, /version 9/],
      ['/api/models/Bad!/promote', { version: 1 }, 400, /is not valid/],
      ['/api/models/nobody/rollback', {}, 404, /model "nobody" does not exist/],
    ];
    for (const [path, body, status, message] of cases) {
      const answer = await post<{ error: string }>(path, body);
      expect([path, answer.status]).toEqual([path, status]);
      expect(answer.body.error).toMatch(message);
    }
    const notJson = await fetch(`${local.url}/api/models/steer/promote`, {
      method: 'POST',
      headers: { 'x-maas-console': '1' },
      body: '{',
    });
    expect(notJson.status).toBe(400);
    const samples = await fetch(`${local.url}/api/models/steer/samples?file=m.onnx`, {
      method: 'PUT',
      headers: { 'x-maas-console': '1' },
      body: '[]',
    });
    expect(samples.status).toBe(400);
    expect(((await samples.json()) as { error: string }).error).toContain('non-empty JSON array');
    const upload = await fetch(`${local.url}/api/models/steer/upload?file=model.txt`, {
      method: 'PUT',
      headers: { 'x-maas-console': '1' },
      body: 'x',
    });
    expect(upload.status).toBe(400);
    expect(await get('/api/nothing')).toMatchObject({ status: 404 });
  });

  it('refuses actions from other sites: without the console header, or through another host name', async () => {
    const forged = await post<{ error: string }>('/api/models/steer/promote', { version: 1 }, {});
    expect(forged.status).toBe(403);
    expect(forged.body.error).toContain('x-maas-console');
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${local.url}/api/models`,
        { headers: { host: 'evil.example' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
  });

  it('serves the page gzipped, within 300 KB', async () => {
    expect(bundle.gzipBytes).toBeLessThan(300 * 1024);
    const page = await fetch(`${local.url}/models/anything`, {
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script src="/app.js" defer>');
    const script = await fetch(`${local.url}/app.js`);
    expect(script.headers.get('content-type')).toContain('javascript');
    expect((await script.text()).length).toBe(bundle['app.js'].body.length);
  });
});

describe('maas console beside a running stack', () => {
  it('reads the figures from the stack console over HTTP', async () => {
    const beside = await startConsole({
      target: {
        kind: 'local',
        s3Endpoint: s3.s3.endpoint,
        bucket: s3.s3.bucket,
        region: 'us-east-1',
        apiUrl: 'http://127.0.0.1:9',
      },
      port: 0,
      definitions,
      metricsFrom: local.url,
      bundle,
    });
    try {
      const remote = await get<MetricsResponse>('/api/models/failing/metrics', beside.url);
      const direct = await get<MetricsResponse>('/api/models/failing/metrics');
      expect(remote.body.error).toBeUndefined();
      expect(remote.body.versions.map((v) => v.version)).toEqual([1, 2]);
      expect(remote.body.versions[1]?.requests.reduce((a, b) => a + b, 0)).toBe(
        direct.body.versions[1]?.requests.reduce((a, b) => a + b, 0),
      );
      expect((await get<ModelsResponse>('/api/models', beside.url)).body.target.metrics).toBe(
        'remote',
      );
      // the figures are the stack's to serve: this console has none of its own
      expect((await fetch(`${beside.url}/metrics`)).status).toBe(404);
    } finally {
      await beside.close();
    }
  });

  it('says where the figures were expected when the stack console does not answer', async () => {
    const alone = await startConsole({
      target: {
        kind: 'local',
        s3Endpoint: s3.s3.endpoint,
        bucket: s3.s3.bucket,
        region: 'us-east-1',
        apiUrl: 'http://127.0.0.1:9',
      },
      port: 0,
      definitions,
      metricsFrom: 'http://127.0.0.1:9',
      bundle,
    });
    try {
      const models = await get<ModelsResponse>('/api/models', alone.url);
      expect(models.status).toBe(200);
      expect(models.body.metricsError).toContain('http://127.0.0.1:9/api/models/');
      expect(models.body.metricsError).toContain('--metrics-from');
      expect(models.body.models.find((m) => m.name === 'canary')?.status).toBe('canary baking');
    } finally {
      await alone.close();
    }
  });

  it('refuses a port in use, naming the console that may already be there', async () => {
    await expect(
      startConsole({
        target: {
          kind: 'local',
          s3Endpoint: s3.s3.endpoint,
          bucket: s3.s3.bucket,
          region: 'us-east-1',
          apiUrl: 'http://127.0.0.1:9',
        },
        port: local.port,
        definitions,
        bundle,
      }),
    ).rejects.toThrow(
      /port \d+ on 127.0.0.1 is in use: the local stack's own console may already be at/,
    );
  });
});

describe('console server, unreachable stack', () => {
  it('answers 503 naming the endpoint and how to start it', async () => {
    const stopped = await startConsole({
      target: {
        kind: 'local',
        s3Endpoint: 'http://127.0.0.1:9',
        bucket: 'maas-models',
        region: 'us-east-1',
        apiUrl: 'http://127.0.0.1:9',
      },
      port: 0,
      definitions,
      metricsFrom: 'http://127.0.0.1:9',
      bundle,
    });
    try {
      const { status, body } = await get<{ error: string }>('/api/models', stopped.url);
      expect(status).toBe(503);
      expect(body.error).toContain('is the local stack running (S3 at http://127.0.0.1:9)?');
      expect(body.error).toContain('npm start');
      const metrics = await fetch(`${stopped.url}/metrics`);
      expect(metrics.status).toBe(404);
    } finally {
      await stopped.close();
    }
  });
});

describe('console server, deployed stack (registry in the local S3, CloudWatch mocked)', () => {
  it('shows the same pages with figures from GetMetricData', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'S3RVER');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'S3RVER');
    const cloudWatch = new CloudWatchClient({ region: 'eu-west-1' });
    const mock = mockClient(cloudWatch);
    const cloudRules = alarmDefinitions();
    // v2 of "failing": 100 requests a minute, 30 % failing; every other series: clean traffic
    mock.on(GetMetricDataCommand).callsFake(
      (input: {
        MetricDataQueries: {
          Id: string;
          MetricStat: {
            Metric: { MetricName: string; Dimensions: { Value: string }[] };
            Stat: string;
          };
        }[];
        StartTime: Date;
        EndTime: Date;
      }) => {
        const start = input.StartTime.getTime();
        const end = input.EndTime.getTime();
        const stamps: Date[] = [];
        for (let t = start; t < end; t += 60_000) stamps.push(new Date(t));
        return {
          MetricDataResults: input.MetricDataQueries.map((q) => {
            const [model, version] = q.MetricStat.Metric.Dimensions.map((d) => d.Value);
            const bad = model === 'failing' && version === '2';
            const metric = q.MetricStat.Metric.MetricName;
            const stat = q.MetricStat.Stat;
            const value =
              metric === 'Requests'
                ? 100
                : metric === 'ModelErrors'
                  ? stat === 'Sum'
                    ? bad
                      ? 30
                      : 0
                    : bad
                      ? 0.3
                      : 0
                  : stat === 'p50'
                    ? 12
                    : 40;
            return { Id: q.Id, Timestamps: stamps, Values: stamps.map(() => value) };
          }),
        };
      },
    );
    const cloud = await startConsole({
      target: {
        kind: 'stack',
        file: 'cdk-outputs.json',
        stackName: 'Maas',
        s3Endpoint: s3.s3.endpoint,
        bucket: s3.s3.bucket,
        region: 'us-east-1',
        apiUrl: 'https://abc.execute-api.eu-west-1.amazonaws.com/',
      },
      port: 0,
      definitions: cloudRules,
      cloudWatch,
      bundle,
    });
    try {
      const models = await get<ModelsResponse>('/api/models', cloud.url);
      expect(models.status).toBe(200);
      expect(models.body.target).toMatchObject({
        kind: 'stack',
        metrics: 'cloudwatch',
        prometheus: false,
      });
      const byName = Object.fromEntries(models.body.models.map((m) => [m.name, m]));
      expect(byName.failing?.status).toBe('breaching');
      expect(byName.healthy?.status).toBe('healthy');
      expect(byName.canary?.status).toBe('canary baking');
      expect(byName.healthy?.rps).toBeCloseTo(100 / 60, 5);
      const metrics = await get<MetricsResponse>('/api/models/failing/metrics', cloud.url);
      expect(metrics.body.stepMs).toBe(60_000);
      const v2 = metrics.body.versions.find((s) => s.version === 2);
      expect(v2?.t).toHaveLength(30);
      expect(new Set(v2?.errorRate)).toEqual(new Set([0.3]));
      expect(new Set(v2?.p99)).toEqual(new Set([40]));
      const history = await get<HistoryPage>('/api/models/busy/history', cloud.url);
      expect(history.body.total).toBe(1000);
      const prometheus = await fetch(`${cloud.url}/metrics`);
      expect(prometheus.status).toBe(404);
      expect(((await prometheus.json()) as { error: string }).error).toContain('CloudWatch');
      const queries = mock
        .commandCalls(GetMetricDataCommand)
        .flatMap((c) => c.args[0].input.MetricDataQueries ?? []);
      expect(queries.some((q) => q.MetricStat?.Stat === 'p99')).toBe(true);
    } finally {
      await cloud.close();
      mock.restore();
      vi.unstubAllEnvs();
    }
  });
});
