import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFileName } from '../../../cli/console/backend.ts';
import { type RunningConsole, startConsole } from '../../../cli/console/index.ts';
import {
  MODEL_NAME_PATTERN,
  type ModelResponse,
  type ModelsResponse,
} from '../../../cli/console/types.ts';
import { LocalMetricsStore } from '../../../local/guard/metrics-store.ts';
import { alarmDefinitions, promoteVersion, setCanaryWeight } from '../../../src/guard/index.ts';
import { keys, Registry } from '../../../src/registry/index.ts';
import type { ObjectStore } from '../../../src/storage/index.ts';
import { commitVersion, modelWith } from '../../support/guard-fixtures.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';
import { overwrite } from '../../support/registry.ts';

/**
 * What a hostile page, a careless operator and a damaged registry did to the console, each answered
 * with a sentence instead of a 500, a blank page or a false report.
 */

let s3: TestS3;
let registry: Registry;
let local: RunningConsole;

const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
  const response = await fetch(`${local.url}${path}`);
  return { status: response.status, body: (await response.json()) as T };
};

beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
  // v1 readable; v2's manifest is JSON but not a manifest (variants missing)
  await modelWith(registry, 'misshapen', 2, { production: 1 });
  const v2 = JSON.parse(
    new TextDecoder().decode((await s3.store.get(keys.manifest('misshapen', 2)))?.body),
  ) as Record<string, unknown>;
  await overwrite(
    s3.store,
    keys.manifest('misshapen', 2),
    JSON.stringify({ ...v2, variants: null }),
  );
  // aliases that are JSON but not aliases
  await commitVersion(registry, 'oddaliases');
  await overwrite(
    s3.store,
    keys.aliases('oddaliases'),
    JSON.stringify({
      model: 'oddaliases',
      production: 'abc',
      candidate: { version: { x: 1 }, weight: 'lots', bakeUntil: 'never' },
      knownGood: 'nope',
      rolledBack: null,
    }),
  );
  local = await startConsole({
    target: {
      kind: 'local',
      s3Endpoint: s3.s3.endpoint,
      bucket: s3.s3.bucket,
      region: 'us-east-1',
      apiUrl: 'http://127.0.0.1:9',
    },
    port: 0,
    definitions: alarmDefinitions({ timeScale: 1 / 60, overrides: {} }),
    localStore: new LocalMetricsStore(60_000),
  });
}, 120_000);

afterAll(async () => {
  await local?.close();
  await s3?.cleanup();
});

describe('console server against hostile and damaged input', () => {
  it('answers a malformed percent-encoding in the model name with 400, not 500', async () => {
    const { status, body } = await get<{ error: string }>('/api/models/a%ZZ');
    expect(status).toBe(400);
    expect(body.error).toContain('percent-encoded');
  });

  it('names a manifest that is JSON but not a manifest, and still shows the readable version', async () => {
    const { status, body } = await get<ModelResponse>('/api/models/misshapen');
    expect(status).toBe(200);
    expect(body.versions.map((v) => [v.version, v.manifest !== undefined])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(body.versions[1]?.error).toMatch(/registry\/misshapen\/2\/manifest\.json .*variants/);
  });

  it('shows aliases that are JSON but not aliases as unreadable, on the list and the model', async () => {
    const list = await get<ModelsResponse>('/api/models');
    const row = list.body.models.find((m) => m.name === 'oddaliases');
    expect(row?.status).toBe('unreadable');
    expect(row?.statusDetail).toMatch(/registry\/oddaliases\/aliases\.json .*production/);
    expect(row).not.toHaveProperty('candidate');
    const model = await get<ModelResponse>('/api/models/oddaliases');
    expect(model.status).toBe(200);
    expect(model.body.aliases).toBeUndefined();
    expect(model.body.status).toBe('unreadable');
    expect((await get<{ version: number }>('/api/models/oddaliases/example')).body.version).toBe(1);
    expect(model.body.problems[0]).toMatch(/aliases\.json cannot be read/);
    expect(model.body.versions.map((v) => v.version)).toEqual([1]);
  });

  it('refuses to promote a version whose manifest it cannot show, leaving production as it was', async () => {
    const response = await fetch(`${local.url}/api/models/misshapen/promote`, {
      method: 'POST',
      headers: { 'x-maas-console': '1', 'content-type': 'application/json' },
      body: JSON.stringify({ version: 2 }),
    });
    expect(response.status).toBe(502);
    expect(((await response.json()) as { error: string }).error).toMatch(
      /2\/manifest\.json .*variants/,
    );
    expect((await registry.getAliases('misshapen'))?.aliases.production).toBe(1);
  });

  it('forbids other sites to frame the page or the API', async () => {
    for (const path of ['/', '/api/models']) {
      const response = await fetch(`${local.url}${path}`);
      await response.arrayBuffer();
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    }
  });

  it('refuses an upload declared over the largest size ingest can take before reading it', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${local.url}/api/models/big/upload?file=big.onnx`, {
        method: 'PUT',
        headers: { 'x-maas-console': '1', 'content-length': String(3 * 1024 ** 3) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write('x');
    });
    expect(status).toBe(413);
  }, 10_000);

  it('keys a browser-named upload (spaces, parentheses, accents) instead of refusing it', async () => {
    expect(checkFileName('my model (1).onnx')).toBe('my-model-1.onnx');
    expect(checkFileName('modèle.onnx')).toBe('modele.onnx');
    expect(checkFileName('C:\\Users\\me\\\u202etxt.onnx')).toBe('txt.onnx');
    expect(checkFileName('().onnx')).toBe('model.onnx');
    expect(() => checkFileName('notes.txt')).toThrow(/not a \.onnx file name/);
    const response = await fetch(
      `${local.url}/api/models/named/upload?file=${encodeURIComponent('my model (1).onnx')}`,
      { method: 'PUT', headers: { 'x-maas-console': '1' }, body: 'not onnx' },
    );
    expect(response.status).toBe(200);
    expect(((await response.json()) as { key: string }).key).toBe('incoming/named/my-model-1.onnx');
  });

  it('gives the upload form a model-name pattern browsers compile (they use the v flag)', () => {
    const pattern = new RegExp(`^(?:${MODEL_NAME_PATTERN})$`, 'v');
    expect(['mymodel', 'my-model.v2_b'].map((n) => pattern.test(n))).toEqual([true, true]);
    expect(['My Model', '-x', ''].map((n) => pattern.test(n))).toEqual([false, false, false]);
  });

  it('reports a canary weight lost to a concurrent promote as an error, not as already set', async () => {
    const bakeUntil = new Date(Date.now() + 3_600_000).toISOString();
    await modelWith(registry, 'raced', 2, {
      production: 1,
      candidate: { version: 2, weight: 0.3, bakeUntil },
    });
    // the promote lands between the weight change's read of aliases.json and its conditional write
    let raced = false;
    const racing = new Proxy(s3.store, {
      get(target, prop) {
        if (prop === 'put') {
          return async (...args: Parameters<ObjectStore['put']>) => {
            if (!raced && args[0] === keys.aliases('raced')) {
              raced = true;
              await promoteVersion(registry, 'raced', 2, { actor: 'rival' });
            }
            return target.put(...args);
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const attempt = setCanaryWeight(new Registry(racing), 'raced', 0.8, { actor: 'console' });
    await expect(attempt).rejects.toThrow(/no candidate version to weigh/);
    expect(raced).toBe(true);
    const aliases = (await registry.getAliases('raced'))?.aliases;
    expect(aliases?.production).toBe(2);
    expect(aliases?.candidate).toBeUndefined();
  });
});
