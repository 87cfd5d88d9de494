import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalApi, startLocalApi } from '../../local/http/index.ts';
import { ensureExampleModels } from '../../models/generate.ts';
import { keys, Registry } from '../../src/registry/index.ts';
import { s3Env, startTestS3, type TestS3 } from '../support/local-s3.ts';
import { overwrite, registerVersion, setAliases } from '../support/registry.ts';

/**
 * Issue 3's storage-fault acceptance point, over HTTP through the local API and the real predict
 * handler: a cold load that meets a bad sha256 or an unreachable store answers 503 with
 * Retry-After and a clear error, and the model already loaded keeps serving.
 */
describe('predict over HTTP when model storage fails', () => {
  let s3: TestS3;
  let api: LocalApi;
  let s3Closed = false;
  const infer = (path: string) =>
    fetch(`${api.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
      }),
    });

  beforeAll(async () => {
    s3 = await startTestS3();
    const registry = new Registry(s3.store);
    const iris = new Uint8Array(await readFile((await ensureExampleModels()).iris.path));
    for (let i = 0; i < 3; i++) await registerVersion(registry, 'iris', iris);
    await setAliases(registry, 'iris', { production: 1 });
    api = await startLocalApi({
      port: 0,
      workers: 1,
      onOutput: () => undefined,
      env: {
        ...s3Env(s3.s3),
        // the versions share their bytes: with the disk cache (keyed by sha256) only v1 would read S3
        MAAS_TMP_CACHE_BYTES: '0',
        MAAS_ALIAS_TTL_MS: '0',
      },
    });
  });

  afterAll(async () => {
    await api?.close();
    if (!s3Closed) await s3?.cleanup();
  });

  it('answers 503 with Retry-After for bytes that fail their sha256, and serves the rest', async () => {
    const warm = await infer('/v2/models/iris/infer');
    await overwrite(s3.store, keys.variant('iris', 2, 'fp32'), new Uint8Array(512));

    const tampered = await infer('/v2/models/iris/versions/2/infer');

    expect(warm.status).toBe(200);
    expect(tampered.status).toBe(503);
    expect(Number(tampered.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await tampered.json()) as { error: string }).error).toMatch(/iris version 2.*sha256/);
    expect((await infer('/v2/models/iris/infer')).status).toBe(200);
  });

  it('answers 503 with Retry-After for a cold model while the store is down, and keeps serving the warm one', async () => {
    await s3.cleanup();
    s3Closed = true;

    const cold = await infer('/v2/models/iris/versions/3/infer');
    const warm = await infer('/v2/models/iris/infer');

    expect(cold.status).toBe(503);
    expect(Number(cold.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await cold.json()) as { error: string }).error).toContain('iris version 3');
    expect(warm.status).toBe(200);
    expect(warm.headers.get('x-maas-model-version')).toBe('1');
    expect(warm.headers.get('x-maas-variant')).toBe('production');
  });
});
