/**
 * Cold start of the deployed predict artifact against hand-written code, on the local S3.
 *
 *   bundle  the esbuild bundle `cdk synth` builds (x86_64 asset): a fresh node process imports it
 *           (Lambda's init), invokes the handler with a V2 infer request, first answer
 *   bare    what a user writes: a fresh node process, S3 GetObject of the served variant as ingest
 *           produced it (before pre-optimization), InferenceSession.create, run
 *   floor   a fresh node process, the same bytes read from a local file, create, run
 *
 * Models: the generated encoder and Iris, each ingested through the real ingest first (so the
 * served variant and any pre-optimized graph are what ingest stored). Runs interleave the kinds
 * (rotating which goes first) so load on a shared machine falls on all alike; each figure is the
 * median of the rounds. Also measured in this process: session creation of the plain served
 * variant vs the stored pre-optimized graph.
 *
 *   npx tsx bench/coldstart.ts [--rounds 7] [--asset <cdk asset folder of maas-predict>]
 */

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { toEvent } from '../local/http/index.ts';
import { INGEST_DEFAULTS, ingestUpload } from '../src/ingest/index.ts';
import { median } from '../src/quantize/index.ts';
import { keys, type Manifest, Registry } from '../src/registry/index.ts';
import { createSession, type SessionSettings } from '../src/runtime/index.ts';
import { synthWithCli } from '../test/infra/cli-synth.ts';
import { s3Env, startTestS3 } from '../test/support/local-s3.ts';
import { exampleModels, readJson, type V2Tensor } from '../test/support/models.ts';
import { printTable, writeResults } from './lib/report.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const ROUNDS = Number(arg('rounds') ?? 7);
const LIB = fileURLToPath(new URL('./lib/', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** MAAS_BENCH_PROFILE=<dir>: each bundle run writes a V8 CPU profile there (where its time goes) */
const PROFILE_ARGS = process.env.MAAS_BENCH_PROFILE
  ? ['--cpu-prof', `--cpu-prof-dir=${process.env.MAAS_BENCH_PROFILE}`, '--cpu-prof-interval=200']
  : [];

type Kind = 'bundle' | 'bare' | 'floor';
const KINDS: readonly Kind[] = ['bundle', 'bare', 'floor'];

interface Subject {
  name: string;
  manifest: Manifest;
  /** the served variant as ingest produced it, on local disk for the floor */
  servedFile: string;
  servedKey: string;
  eventFile: string;
  feedsFile: string;
}

/** a fresh process's time to its answer; for the bundle, also its init (spawn → handler imported) */
interface Timed {
  total: number;
  init?: number;
}

const run = (args: string[], env: Record<string, string | undefined>, cwd: string) =>
  new Promise<Timed>((resolve, reject) => {
    const spawnedAt = performance.timeOrigin + performance.now();
    execFile(process.execPath, args, { env, cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
      if (err) return reject(err);
      const line = stdout.trim().split('\n').at(-1) ?? '';
      const out = JSON.parse(line) as { answeredAt: number; initAt?: number; status?: number };
      if (out.status !== undefined && out.status !== 200) {
        return reject(new Error(`bundle answered ${out.status}: ${stdout}`));
      }
      const total = out.answeredAt - spawnedAt;
      resolve(out.initAt === undefined ? { total } : { total, init: out.initAt - spawnedAt });
    });
  });

const main = async () => {
  const work = await mkdtemp(join(tmpdir(), 'maas-coldstart-'));
  const s3 = await startTestS3();
  let disposeSynth: (() => void) | undefined;
  try {
    const registry = new Registry(s3.store);
    const models = await exampleModels();
    const subjects: Subject[] = [];
    for (const [name, paths] of [
      ['encoder', models.encoder],
      ['iris', models.iris],
    ] as const) {
      const key = keys.incomingModel(name, `${name}.onnx`);
      await s3.store.put(keys.samplesFor(key), await readFile(paths.samplesPath), {
        contentType: 'application/json',
      });
      await s3.client.send(
        new PutObjectCommand({ Bucket: s3.s3.bucket, Key: key, Body: await readFile(paths.path) }),
      );
      const result = await ingestUpload(
        { bucketKey: key },
        { registry, settings: { ...INGEST_DEFAULTS, intraOpThreads: 0 } },
      );
      if (result.status !== 'registered') throw new Error(`${name}: ${JSON.stringify(result)}`);
      const manifest = await registry.getManifest(name, result.version);
      const variant = manifest.variants[manifest.served] ?? manifest.variants.fp32;
      const servedFile = join(work, `${name}.served.onnx`);
      await writeFile(servedFile, (await s3.store.get(variant.key))!.body);
      const [sample] = await readJson<{ inputs: V2Tensor[] }[]>(paths.samplesPath);
      const eventFile = join(work, `${name}.event.json`);
      await writeFile(
        eventFile,
        JSON.stringify(
          toEvent({
            method: 'POST',
            url: `/v2/models/${name}/infer`,
            rawHeaders: ['host', 'api.bench', 'content-type', 'application/json'],
            body: Buffer.from(JSON.stringify(sample)),
            sourceIp: '127.0.0.1',
            requestId: 'coldstart',
            receivedAt: new Date(),
          }),
        ),
      );
      const feedsFile = join(work, `${name}.feeds.json`);
      await writeFile(
        feedsFile,
        JSON.stringify(
          Object.fromEntries(
            (sample?.inputs ?? []).map((t) => [
              t.name,
              {
                type: t.datatype === 'INT64' ? 'int64' : 'float32',
                dims: t.shape,
                data: (t.data as unknown[]).flat(Number.POSITIVE_INFINITY),
              },
            ]),
          ),
        ),
      );
      subjects.push({ name, manifest, servedFile, servedKey: variant.key, eventFile, feedsFile });
      console.log(
        `${name}: served ${manifest.served}, pre-optimized graph ${
          manifest.optimized
            ? `stored (load level ${manifest.optimized.loadLevel}, create ${manifest.optimized.createMs.original.toFixed(1)} → ${manifest.optimized.createMs.optimized.toFixed(1)} ms at ingest)`
            : 'not stored'
        }`,
      );
    }

    let asset = arg('asset');
    if (asset === undefined) {
      console.log('cdk synth (x86_64, real bundling)…');
      const synth = await synthWithCli('x86_64');
      disposeSynth = synth.dispose;
      asset = synth.assets['maas-predict'];
      if (asset === undefined) throw new Error('cdk synth produced no maas-predict asset');
    }

    const baseEnv = {
      PATH: process.env.PATH,
      ...s3Env(s3.s3),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const times: Record<string, Record<Kind, number[]>> = {};
    /** the bundle's init (process start and import of index.mjs) per model */
    const inits: Record<string, number[]> = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (const [si, s] of subjects.entries()) {
        times[s.name] ??= { bundle: [], bare: [], floor: [] };
        const t = times[s.name]!;
        const order = KINDS.map((_, i) => KINDS[(i + r + si) % KINDS.length]!);
        for (const kind of order) {
          if (kind === 'bundle') {
            const cache = await mkdtemp(join(work, 'cache-'));
            const timed = await run(
              [...PROFILE_ARGS, join(LIB, 'coldstart-bundle.mjs'), asset, s.eventFile],
              {
                ...baseEnv,
                // predict runs without NODE_OPTIONS (infra/predict-api.ts, sourceMaps: false);
                // MAAS_BENCH_NODE_OPTIONS=--enable-source-maps shows what they would cost
                ...(process.env.MAAS_BENCH_NODE_OPTIONS
                  ? { NODE_OPTIONS: process.env.MAAS_BENCH_NODE_OPTIONS }
                  : {}),
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '2048',
                AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
                MAAS_TMP_CACHE_DIR: cache,
                POWERTOOLS_METRICS_NAMESPACE: 'Maas',
                POWERTOOLS_SERVICE_NAME: 'maas-predict',
                POWERTOOLS_LOG_LEVEL: 'WARN',
              },
              asset,
            );
            t.bundle.push(timed.total);
            inits[s.name] = [...(inits[s.name] ?? []), timed.init ?? Number.NaN];
            await rm(cache, { recursive: true, force: true });
          } else if (kind === 'bare') {
            const timed = await run(
              [join(LIB, 'coldstart-bare.mjs'), s3.s3.bucket, s.servedKey, s.feedsFile],
              baseEnv,
              ROOT,
            );
            t.bare.push(timed.total);
          } else {
            const timed = await run(
              [join(LIB, 'coldstart-floor.mjs'), s.servedFile, s.feedsFile],
              baseEnv,
              ROOT,
            );
            t.floor.push(timed.total);
          }
        }
      }
      console.log(`round ${r + 1}/${ROUNDS} done`);
    }

    // Session creation alone, in this process: the plain served variant (as ingest produced it,
    // at the default level) against the stored pre-optimized graph at its recorded load level.
    const creation: Record<string, { plainMs: number; optimizedMs?: number }> = {};
    for (const s of subjects) {
      const plain = await readFile(s.servedFile);
      const opt = s.manifest.optimized;
      const optBytes = opt ? (await s3.store.get(opt.key))!.body : undefined;
      const measure = async (bytes: Uint8Array, settings: SessionSettings) => {
        const t0 = performance.now();
        const session = await createSession(bytes, settings);
        const ms = performance.now() - t0;
        await session.release();
        return ms;
      };
      const plainMs: number[] = [];
      const optMs: number[] = [];
      for (let r = 0; r < 9; r++) {
        plainMs.push(await measure(plain, {}));
        if (optBytes && opt)
          optMs.push(await measure(optBytes, { optimizationLevel: opt.loadLevel }));
      }
      creation[s.name] = {
        plainMs: median(plainMs),
        ...(optMs.length > 0 ? { optimizedMs: median(optMs) } : {}),
      };
    }

    const rows = subjects.map((s) => {
      const t = times[s.name]!;
      const [bundle, bare, floor] = [median(t.bundle), median(t.bare), median(t.floor)];
      const c = creation[s.name]!;
      return {
        model: s.name,
        served: s.manifest.served,
        optimized: s.manifest.optimized?.loadLevel ?? 'none',
        bundleMs: bundle,
        bareMs: bare,
        floorMs: floor,
        bundleVsBare: bundle / bare,
        bundleVsFloor: bundle / floor,
        bundleInitMs: median(inits[s.name] ?? []),
        createPlainMs: c.plainMs,
        createOptimizedMs: c.optimizedMs,
        createRatio: c.optimizedMs === undefined ? undefined : c.optimizedMs / c.plainMs,
        runs: t,
      };
    });
    printTable(
      `cold start, fresh process → first answer, local S3, medians of ${ROUNDS} interleaved runs (ms)`,
      ['model', 'served', 'pre-opt', 'bundle', 'bare', 'floor', 'bundle/bare', 'bundle/floor'],
      rows.map((r) => [
        r.model,
        r.served,
        r.optimized,
        r.bundleMs,
        r.bareMs,
        r.floorMs,
        r.bundleVsBare,
        r.bundleVsFloor,
      ]),
    );
    printTable(
      "the bundle's time: init (process start, import of index.mjs) and its first invocation (ms)",
      ['model', 'init', 'first invocation', 'bundle'],
      rows.map((r) => [r.model, r.bundleInitMs, r.bundleMs - r.bundleInitMs, r.bundleMs]),
    );
    printTable(
      'session creation in one process, medians of 9 (ms)',
      ['model', 'plain variant @all', 'pre-optimized @load level', 'ratio'],
      rows.map((r) => [r.model, r.createPlainMs, r.createOptimizedMs, r.createRatio]),
    );
    await writeResults('coldstart', {
      command: `npx tsx bench/coldstart.ts --rounds ${ROUNDS}`,
      rounds: ROUNDS,
      rows,
    });
  } finally {
    disposeSynth?.();
    await s3.cleanup();
    await rm(work, { recursive: true, force: true });
  }
};

await main();
