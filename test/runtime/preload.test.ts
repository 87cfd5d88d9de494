import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../../src/registry/index.ts';
import { ModelRuntime } from '../../src/runtime/index.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';
import { registerVersion, setAliases } from '../support/registry.ts';
import { addModel, tempDir } from '../support/runtime-fixtures.ts';

let s3: TestS3;
let registry: Registry;
beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
  for (const offset of [1, 2]) await registerVersion(registry, 'two', addModel(offset));
  await setAliases(registry, 'two', {
    production: 1,
    candidate: { version: 2, weight: 0.5, bakeUntil: new Date().toISOString() },
  });
  await registerVersion(registry, 'one', addModel(3));
  await setAliases(registry, 'one', { production: 1 });
});
afterAll(() => s3.cleanup());

describe('ModelRuntime.preload', () => {
  it('loads production and candidate of each model, and reports the ones it could not', async () => {
    const tmp = await tempDir();
    const runtime = new ModelRuntime({ registry, store: s3.store, tmpCacheDir: tmp.dir });
    try {
      const loaded = await runtime.preload(['two', 'one', 'missing']);
      expect(loaded.slice(0, 2)).toEqual([{ model: 'two' }, { model: 'one' }]);
      expect(loaded[2]).toMatchObject({ model: 'missing', error: expect.any(String) });
      expect(runtime.loadedModels().sort()).toEqual(['one@1', 'two@1', 'two@2']);
    } finally {
      await runtime.close();
      await tmp.remove();
    }
  });
});
