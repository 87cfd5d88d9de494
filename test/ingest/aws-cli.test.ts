import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/registry/index.ts';
import { normalizeEtag } from '../../src/storage/index.ts';
import { type Harness, startHarness } from '../support/ingest-harness.ts';
import { mlpModel } from '../support/quantize-fixtures.ts';

const AWS = '/usr/bin/aws';
const run = promisify(execFile);

/** The parts of a manifest that depend on the bytes and options, not on the name or the clock. */
const comparable = (m: Manifest) => ({
  served: m.served,
  sha256: m.variants.fp32.sha256,
  bytes: m.variants.fp32.bytes,
  hasInt8: m.variants.int8 !== undefined,
  inputs: m.inputs,
  outputs: m.outputs,
  opsetImports: m.opsetImports,
  quantization: m.quantization,
});

describe.skipIf(!existsSync(AWS))("an upload with Debian's aws CLI", () => {
  let harness: Harness;
  let dir: string;

  beforeAll(async () => {
    harness = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'maas-aws-cli-'));
  });
  afterAll(async () => {
    await harness?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is ingested exactly like an SDK upload (maas push), metadata included', async () => {
    const bytes = mlpModel({ widths: [256, 512, 256], seed: 3 });
    const file = join(dir, 'mlp.onnx');
    await writeFile(file, bytes);
    const { stdout } = await run(
      AWS,
      [
        's3',
        'cp',
        file,
        `s3://${harness.s3.s3.bucket}/incoming/via-cli/`,
        '--metadata',
        'maas-quantize=off',
        '--endpoint-url',
        harness.s3.s3.endpoint,
      ],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dir,
          AWS_ACCESS_KEY_ID: 'S3RVER',
          AWS_SECRET_ACCESS_KEY: 'S3RVER',
          AWS_DEFAULT_REGION: 'us-east-1',
        },
      },
    );
    expect(stdout).toContain('upload:');
    const key = 'incoming/via-cli/mlp.onnx';
    const etag = normalizeEtag((await harness.s3.store.head(key)).etag);
    const viaCli = await harness.outcome('via-cli', { sourceKey: key, etag });

    const pushed = await harness.upload('via-sdk', 'mlp.onnx', bytes, {
      metadata: { 'maas-quantize': 'off' },
    });
    const viaSdk = await harness.outcome('via-sdk', pushed);

    expect(viaCli).toMatchObject({
      event: 'registered',
      version: 1,
      details: { sourceKey: key, etag, served: 'fp32' },
    });
    const { sourceKey: _a, etag: _b, ...cliDetails } = viaCli.details ?? {};
    const { sourceKey: _c, etag: _d, ...sdkDetails } = viaSdk.details ?? {};
    expect(cliDetails).toEqual(sdkDetails);
    const [cliManifest, sdkManifest] = await Promise.all([
      harness.registry.getManifest('via-cli', 1),
      harness.registry.getManifest('via-sdk', 1),
    ]);
    expect(cliManifest.quantization?.reason).toBe('maas-quantize=off on the upload');
    expect(comparable(cliManifest)).toEqual(comparable(sdkManifest));
  });
});
