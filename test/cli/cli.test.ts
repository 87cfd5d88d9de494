import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeUpload } from '../../src/ingest/index.ts';
import {
  type Manifest,
  parseIncomingKey,
  Registry,
  uploadDetails,
} from '../../src/registry/index.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

let t: TestS3;
let registry: Registry;
let work: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `maas ...` as a user runs it: a child process on cli/main.ts through tsx. */
function maas(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(root, 'cli/main.ts'), ...args],
      {
        cwd: root,
        env: { ...process.env, MAAS_S3_PORT: String(t.s3.port), MAAS_BUCKET: t.s3.bucket, ...env },
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Stands in for the ingest function (built separately) with exactly the contract the CLI relies
 * on: one `registered` or `rejected` history record per upload, matched by source key, ETag and
 * inputs (samples and options).
 * Files named `reject*.onnx` are refused.
 */
async function ingest(key: string, etag: string): Promise<void> {
  const incoming = parseIncomingKey(key);
  if (incoming?.kind !== 'model') return;
  const { model } = incoming;
  // the identity ingest records: bytes, samples and options
  const ref = { ...(await describeUpload(t.store, key)), etag };
  if (incoming.fileName.startsWith('reject')) {
    await registry.recordRejection({
      model,
      ...ref,
      code: 'NotOnnx',
      reason: 'the file is not an ONNX model: protobuf decoding failed at byte 0',
    });
    return;
  }
  const object = await t.store.get(key);
  const { version } = await registry.reserveVersion(model, ref);
  const fp32 = await registry.putVariant(model, version, 'fp32', object?.body ?? new Uint8Array());
  const manifest: Manifest = {
    model,
    version,
    served: 'fp32',
    variants: { fp32 },
    source: { key, etag },
    irVersion: 9,
    opsetImports: [{ domain: '', version: 17 }],
    producer: { name: 'cli-test', version: '1' },
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4], dimNames: ['batch', null] }],
    outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }],
    quantization: {
      scheme: 'dynamic-int8',
      status: 'not-applied',
      reason: 'too small to gain from int8',
      nodes: [],
      nodesQuantized: 0,
      nodesSkipped: 1,
    },
    createdAt: new Date().toISOString(),
  };
  await registry.commitManifest(manifest);
  await registry.updateAliases(model, (current) => ({
    model,
    production: current?.production ?? version,
    ...(current?.production === undefined
      ? {}
      : { candidate: { version, weight: 0.1, bakeUntil: '2030-01-01T00:00:00.000Z' } }),
    knownGood: current?.knownGood ?? [version],
    rolledBack: current?.rolledBack ?? [],
    updatedAt: '',
  }));
  await registry.appendHistory({
    model,
    event: 'registered',
    version,
    at: new Date().toISOString(),
    actor: 'ingest',
    details: { ...uploadDetails(ref), served: 'fp32' },
  });
}

beforeAll(async () => {
  t = await startTestS3();
  registry = new Registry(t.store);
  work = await mkdtemp(join(tmpdir(), 'maas-cli-'));
  t.s3.onObjectCreated((record) =>
    ingest(decodeURIComponent(record.s3.object.key.replace(/\+/g, ' ')), record.s3.object.eTag),
  );
  await writeFile(join(work, 'iris.onnx'), randomBytes(4096));
  await writeFile(join(work, 'reject-me.onnx'), randomBytes(64));
  await writeFile(join(work, 'samples.json'), JSON.stringify([{ inputs: [] }]));
});
afterAll(async () => {
  await t.cleanup();
  await rm(work, { recursive: true, force: true });
});

describe('maas CLI', () => {
  it('pushes a model with samples and options, then reports its registration', async () => {
    const run = await maas([
      'push',
      join(work, 'iris.onnx'),
      '--model',
      'iris',
      '--samples',
      join(work, 'samples.json'),
      '--no-quantize',
      '--promote',
      'canary',
      '--canary-weight',
      '0.25',
    ]);
    expect(run.stderr).not.toMatch(/maas:/);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('uploaded s3://maas-models/incoming/iris/iris.onnx');
    expect(run.stdout).toContain('registered iris v1 (serves fp32)');
    const head = await t.store.head('incoming/iris/iris.onnx');
    expect(head.metadata).toEqual({
      'maas-quantize': 'off',
      'maas-promote': 'canary',
      'maas-canary-weight': '0.25',
    });
    const samples = await t.store.get('incoming/iris/iris.samples.json');
    expect(JSON.parse(new TextDecoder().decode(samples?.body))).toEqual([{ inputs: [] }]);
  });

  it('answers a second push of the same bytes with the new registration, not the old one', async () => {
    const run = await maas(['push', join(work, 'iris.onnx'), '--model', 'iris', '--json']);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { key: string; outcome: { version: number } };
    expect(result.key).toBe('incoming/iris/iris.onnx');
    expect(result.outcome.version).toBe(2);
  });

  it('uploads a file larger than one part as a multipart upload', async () => {
    const file = join(work, 'large.onnx');
    const bytes = randomBytes(9 * 1024 * 1024 + 123);
    await writeFile(file, bytes);
    const run = await maas(['push', file, '--model', 'large']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('registered large v1');
    const stored = await t.store.get('incoming/large/large.onnx');
    expect(Buffer.compare(Buffer.from(stored?.body ?? []), bytes)).toBe(0);
  });

  it('returns right after the upload with --no-wait', async () => {
    const run = await maas([
      'push',
      join(work, 'iris.onnx'),
      '--model',
      'nowait',
      '--no-wait',
      '--json',
    ]);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { key: string; etag: string; outcome?: unknown };
    expect(result).toMatchObject({ key: 'incoming/nowait/iris.onnx', bytes: 4096 });
    expect(result.etag).toMatch(/^[0-9a-f]{32}$/);
    expect(result.outcome).toBeUndefined();
  });

  it('exits non-zero with the reason when ingest rejects the upload', async () => {
    const run = await maas(['push', join(work, 'reject-me.onnx'), '--model', 'iris']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'model "iris" was rejected: the file is not an ONNX model: protobuf decoding failed at byte 0',
    );
  });

  it('lists models, versions, a version and the history, as tables and as JSON', async () => {
    const [models, modelsJson, versions, versionsJson, show, showJson, history, historyJson] =
      await Promise.all([
        maas(['models']),
        maas(['--json', 'models']),
        maas(['versions', 'iris']),
        maas(['versions', 'iris', '--json']),
        maas(['show', 'iris']),
        maas(['show', 'iris', '2', '--json']),
        maas(['history', 'iris']),
        maas(['history', 'iris', '--json']),
      ]);
    expect(models.stdout).toMatch(/^MODEL\s+PRODUCTION\s+CANDIDATE$/m);
    expect(models.stdout).toMatch(/^iris\s+v1\s+v2 at 10% until 2030-01-01T00:00:00.000Z$/m);
    expect(JSON.parse(modelsJson.stdout)).toContainEqual({
      name: 'iris',
      production: 1,
      candidate: { version: 2, weight: 0.1, bakeUntil: '2030-01-01T00:00:00.000Z' },
    });

    expect(versions.stdout).toMatch(/^v1\s+fp32\s+4\.00 KiB\s+-\s+\S+\s+production$/m);
    expect(versions.stdout).toMatch(/^v2\s+fp32\s+4\.00 KiB\s+-\s+\S+\s+candidate$/m);
    const versionRows = JSON.parse(versionsJson.stdout) as { versions: { version: number }[] };
    expect(versionRows.versions.map((row) => row.version)).toEqual([1, 2]);

    expect(show.stdout).toMatch(/^version:\s+v1 \(production\)$/m);
    expect(show.stdout).toMatch(/^served:\s+fp32$/m);
    expect(show.stdout).toMatch(/^inputs:\s+features FP32 \[batch, 4\]$/m);
    expect(show.stdout).toMatch(/^quantization:\s+dynamic-int8: not-applied \(too small/m);
    expect((JSON.parse(showJson.stdout) as Manifest).version).toBe(2);

    expect(history.stdout).toMatch(/registered\s+v1\s+ingest\s+from incoming\/iris\/iris\.onnx/);
    expect(history.stdout).toMatch(/rejected\s+-\s+ingest\s+the file is not an ONNX model/);
    const records = (JSON.parse(historyJson.stdout) as { history: { event: string }[] }).history;
    expect(records.map((record) => record.event).sort()).toEqual([
      'registered',
      'registered',
      'rejected',
    ]);
    for (const run of [models, modelsJson, versions, versionsJson, show, showJson, history]) {
      expect(run.code).toBe(0);
    }
  });

  it('fails with a reason on stderr and a non-zero exit code', async () => {
    const [unknown, invalid, badVersion, unreachable, missingFile] = await Promise.all([
      maas(['versions', 'no-such-model']),
      maas(['show', 'Not A Name']),
      maas(['show', 'iris', '99']),
      maas(['models'], { MAAS_S3_PORT: '1' }),
      maas(['push', join(work, 'absent.onnx'), '--model', 'iris']),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('model "no-such-model" does not exist');
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('model name "Not A Name" is not valid');
    expect(badVersion.code).toBe(1);
    expect(badVersion.stderr).toContain('version 99 of model "iris" does not exist');
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('Start the local one with `npm start`');
    expect(missingFile.code).toBe(1);
    expect(missingFile.stderr).toContain('cannot read');
    for (const run of [unknown, invalid, badVersion, unreachable, missingFile]) {
      expect(run.stdout).toBe('');
    }
  });

  it('runs through the npx shim', async () => {
    const run = await new Promise<Run>((resolve) => {
      execFile(
        process.execPath,
        [join(root, 'cli/bin.js'), '--help'],
        { cwd: root },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : 1, stdout, stderr }),
      );
    });
    expect(run.code).toBe(0);
    for (const command of ['push', 'models', 'versions', 'show', 'history']) {
      expect(run.stdout).toContain(command);
    }
  });
});
