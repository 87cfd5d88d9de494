/**
 * Peak RSS of ingest, each upload in a fresh process (the local S3 runs in this one, so its
 * memory is not counted): the generated encoder and a generated MLP of ≥ 300 MB, against the
 * fixed cost of a process that loads the same code and one small session, and against a whole
 * ingest of the 4 KB Iris model (what ingest holds whatever the model's size). The figure that
 * matters is (peak − fixed) ÷ model bytes: what the ingest function's memory must hold per byte
 * of upload cap (infra/settings.ts refuses a cap the memory cannot hold at synth).
 * MAAS_BENCH_TRACE=1 prints each child's peak after every step of ingest, and where its resident
 * memory is (glibc's heap, V8's); MAAS_BENCH_TRACE=2 adds each step's log attributes. The children
 * run with the ingest function's allocator settings and V8 semi-space (src/ingest/memory.ts);
 * MAAS_BENCH_MALLOC=default and MAAS_BENCH_SEMI_SPACE=default leave out either.
 *
 *   npx tsx bench/ingest-memory.ts [--large-mb 320] [--only encoder|large] [--accuracy cosine:0.997]
 */

import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { INGEST_PROCESS_ENV, INGEST_SEMI_SPACE_MB } from '../src/ingest/memory.ts';
import { keys } from '../src/registry/index.ts';
import { fmtBytes } from '../src/util/index.ts';
import { s3Env, startTestS3 } from '../test/support/local-s3.ts';
import { exampleModels } from '../test/support/models.ts';
import { mlpModel } from '../test/support/quantize-fixtures.ts';
import { printTable, writeResults } from './lib/report.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const LARGE_MB = Number(arg('large-mb') ?? 320);
const ONLY = arg('only');
/**
 * the encoder's `maas-accuracy`: where dynamic int8 misses the default 0.999 cosine (onnxruntime's
 * int8 kernels on AVX2 without VNNI: 0.9979), `cosine:0.997` still has int8 served and its graph
 * pre-optimized, the path the figures in docs/performance.md were first measured on
 */
const ACCURACY = arg('accuracy');
const CHILD = fileURLToPath(new URL('./lib/ingest-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));

interface ChildOut {
  maxRssBytes: number;
  result: unknown;
}

const child = (args: string[], env: Record<string, string | undefined>) =>
  new Promise<ChildOut>((resolve, reject) => {
    execFile(
      TSX,
      [CHILD, ...args],
      { env, cwd: ROOT, maxBuffer: 64 * 1024 * 1024 },
      (err, out, errOut) => {
        if (process.env.MAAS_BENCH_TRACE !== undefined) process.stderr.write(errOut);
        if (err) return reject(err);
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as ChildOut);
      },
    );
  });

/** Square layers of `width`: enough of them for `mb` megabytes of float weights. */
const largeModel = (mb: number): Uint8Array => {
  const width = 2048;
  const layers = Math.ceil((mb * 1024 * 1024) / (width * width * 4));
  return mlpModel({ widths: Array.from({ length: layers + 1 }, () => width), seed: 3 });
};

const main = async () => {
  const s3 = await startTestS3();
  try {
    const env = {
      PATH: process.env.PATH,
      ...s3Env(s3.s3),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      MAAS_BENCH_SKIP: process.env.MAAS_BENCH_SKIP,
      MAAS_BENCH_TRACE: process.env.MAAS_BENCH_TRACE,
      // the ingest function's own process settings (infra/ingest.ts sets the same)
      ...(process.env.MAAS_BENCH_MALLOC === 'default' ? {} : INGEST_PROCESS_ENV),
      ...(process.env.MAAS_BENCH_SEMI_SPACE === 'default'
        ? {}
        : { NODE_OPTIONS: `--max-semi-space-size=${INGEST_SEMI_SPACE_MB}` }),
    };
    const { encoder, iris } = await exampleModels();
    const baseline = await child(['--baseline', iris.path], env);
    // What ingest holds whatever the model: a whole ingest of the 4 KB Iris classifier (the SDK's
    // connections, onnxruntime's thread pools and allocator caches, the quantizer's code paths).
    const irisKey = keys.incomingModel('iris', 'iris.onnx');
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.s3.bucket, Key: irisKey, Body: await readFile(iris.path) }),
    );
    const small = await child([irisKey], env);
    const cases: { name: string; bytes: Uint8Array; samples?: Uint8Array; accuracy?: string }[] =
      [];
    if (ONLY !== 'large') {
      cases.push({
        name: 'encoder',
        bytes: new Uint8Array(await readFile(encoder.path)),
        samples: new Uint8Array(await readFile(encoder.samplesPath)),
        ...(ACCURACY === undefined ? {} : { accuracy: ACCURACY }),
      });
    }
    if (ONLY !== 'encoder') cases.push({ name: `mlp-${LARGE_MB}mb`, bytes: largeModel(LARGE_MB) });
    const rows = [];
    for (const c of cases) {
      const key = keys.incomingModel(c.name, `${c.name}.onnx`);
      if (c.samples) {
        await s3.store.put(keys.samplesFor(key), c.samples, { contentType: 'application/json' });
      }
      await s3.client.send(
        new PutObjectCommand({
          Bucket: s3.s3.bucket,
          Key: key,
          Body: c.bytes,
          ...(c.accuracy === undefined ? {} : { Metadata: { 'maas-accuracy': c.accuracy } }),
        }),
      );
      const modelBytes = c.bytes.byteLength;
      c.bytes = new Uint8Array(0);
      const t0 = performance.now();
      const out = await child([key], env);
      const seconds = (performance.now() - t0) / 1000;
      const status = (out.result as { status?: string; served?: string; reason?: string }) ?? {};
      rows.push({
        model: c.name,
        modelBytes,
        peakRssBytes: out.maxRssBytes,
        fixedBytes: baseline.maxRssBytes,
        perModelByte: (out.maxRssBytes - baseline.maxRssBytes) / modelBytes,
        smallIngestBytes: small.maxRssBytes,
        perModelByteOverSmall: (out.maxRssBytes - small.maxRssBytes) / modelBytes,
        peakOverModel: out.maxRssBytes / modelBytes,
        outcome: `${status.status ?? '?'}${status.served ? ` (${status.served})` : ''}`,
        seconds,
      });
      console.log(`${c.name}: ${JSON.stringify(out.result).slice(0, 300)}`);
    }
    printTable(
      'ingest peak RSS, one upload per fresh process',
      [
        'model',
        'size',
        'peak RSS',
        'fixed',
        '(peak − fixed) / size',
        'Iris ingest',
        '(peak − Iris) / size',
        'outcome',
        's',
      ],
      rows.map((r) => [
        r.model,
        fmtBytes(r.modelBytes),
        fmtBytes(r.peakRssBytes),
        fmtBytes(r.fixedBytes),
        r.perModelByte,
        fmtBytes(r.smallIngestBytes),
        r.perModelByteOverSmall,
        r.outcome,
        r.seconds,
      ]),
    );
    await writeResults('ingest-memory', {
      command: `npx tsx bench/ingest-memory.ts --large-mb ${LARGE_MB}`,
      fixedBytes: baseline.maxRssBytes,
      smallIngestBytes: small.maxRssBytes,
      rows,
    });
  } finally {
    await s3.cleanup();
  }
};

await main();
