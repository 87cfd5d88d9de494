import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The boundaries of docs/design.md ("Layers"), checked on the source itself so they stay true: a
 * dependency-cruiser-style walk over import statements, with type-only imports told apart from
 * imports that load a module at run time.
 */
const ROOT = resolve(import.meta.dirname, '../..');

interface Import {
  from: string;
  /** a package name or a repository-relative path */
  target: string;
  /** `import type` / `export type`: erased, loads nothing */
  typeOnly: boolean;
}

// bindings hold no quote or semicolon: a side-effect import must not swallow the next statement
const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^;'"]*?\s+from\s+)?['"]([^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

const sourceFiles = (dir: string): string[] =>
  readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });

const importsOf = (file: string): Import[] => {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found: Import[] = [];
  const resolveTarget = (spec: string): string =>
    spec.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), spec)) : spec;
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[3] as string;
    found.push({ from: file, target: resolveTarget(spec), typeOnly: m[2] !== undefined });
  }
  for (const m of text.matchAll(DYNAMIC)) {
    found.push({ from: file, target: resolveTarget(m[1] as string), typeOnly: false });
  }
  return found;
};

const packageOf = (target: string): string =>
  target.startsWith('@') ? target.split('/').slice(0, 2).join('/') : (target.split('/')[0] ?? '');

/** Every module `entry` loads at run time, following relative imports (packages are leaves). */
const runtimeClosure = (entry: string): Set<string> => {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith('.ts') && !file.endsWith('.js') && !file.endsWith('.mjs')) continue;
    for (const imp of importsOf(file)) {
      if (imp.typeOnly) continue;
      if (imp.target.startsWith('node:') || imp.target.endsWith('.json')) continue;
      queue.push(
        imp.target.includes('/') && !imp.target.startsWith('@') && statExists(imp.target)
          ? imp.target
          : packageOf(imp.target),
      );
    }
  }
  return seen;
};

const statExists = (path: string): boolean => {
  try {
    return statSync(join(ROOT, path)).isFile();
  } catch {
    return false;
  }
};

const importsUnder = (dir: string): Import[] => sourceFiles(dir).flatMap(importsOf);

const offending = (imports: Import[], banned: (target: string) => boolean): string[] =>
  imports.filter((i) => banned(i.target)).map((i) => `${i.from} → ${i.target}`);

const within = (dir: string) => (target: string) => target === dir || target.startsWith(`${dir}/`);

describe('layer boundaries', () => {
  it('keeps src/protocol a pure codec: no onnxruntime, registry, runtime, serve or metrics', () => {
    const banned = (t: string) =>
      t === 'onnxruntime-node' ||
      ['src/registry', 'src/runtime', 'src/serve', 'src/metrics'].some((d) => within(d)(t));
    expect(offending(importsUnder('src/protocol'), banned)).toEqual([]);
  });

  it('keeps src/quantize free of the registry and of sessions', () => {
    const banned = (t: string) =>
      t === 'onnxruntime-node' ||
      ['src/registry', 'src/runtime', 'src/ingest'].some((d) => within(d)(t));
    expect(offending(importsUnder('src/quantize'), banned)).toEqual([]);
    const sources = sourceFiles('src/quantize').map((f) => readFileSync(join(ROOT, f), 'utf8'));
    expect(sources.filter((s) => /InferenceSession|createSession/.test(s))).toEqual([]);
  });

  it('creates onnxruntime sessions in one place only', () => {
    const creators = ['src', 'functions', 'local', 'cli']
      .flatMap(sourceFiles)
      .filter((f) => /InferenceSession\.create\(/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(creators).toEqual(['src/runtime/sessions.ts']);
  });

  it('keeps the core free of Lambda event types and middy', () => {
    const banned = (t: string) => t === 'aws-lambda' || t.startsWith('@middy/');
    expect(offending(importsUnder('src'), banned)).toEqual([]);
  });

  it('loads no AWS SDK client and no onnxruntime when the CDK app synthesizes', () => {
    const loaded = [...runtimeClosure('infra/app.ts')];
    const clients = loaded.filter(
      (m) => m.startsWith('@aws-sdk/') || m === 'onnxruntime-node' || m.startsWith('@smithy/'),
    );
    expect(clients).toEqual([]);
    // the closure did follow the app into src/: the walk is not vacuous
    expect(loaded).toContain('src/guard/alarms.ts');
  });

  it('keeps the S3 client out of predict: its 430 KB were compiled at every cold start', () => {
    const loaded = [...runtimeClosure('functions/predict/handler.ts')];
    expect(loaded.filter((m) => m.startsWith('@aws-sdk/client-'))).toEqual([]);
    // the walk reached predict's store and runtime: it is not vacuous
    expect(loaded).toEqual(
      expect.arrayContaining(['src/storage/s3-reader.ts', 'src/runtime/from-env.ts']),
    );
  });

  it('has no import cycle between the folders of src/', () => {
    const edges = new Map<string, Set<string>>();
    for (const imp of importsUnder('src')) {
      const [, from] = imp.from.split('/');
      const [root, to] = imp.target.split('/');
      if (root !== 'src' || from === undefined || to === undefined || from === to) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)?.add(to);
    }
    const cycles: string[] = [];
    const visit = (node: string, path: string[]): void => {
      for (const next of edges.get(node) ?? []) {
        if (path.includes(next)) cycles.push([...path.slice(path.indexOf(next)), next].join(' → '));
        else visit(next, [...path, next]);
      }
    };
    for (const node of edges.keys()) visit(node, [node]);
    expect(cycles).toEqual([]);
  });

  it('cites only documents inside the repository', () => {
    const citing = ['src', 'functions', 'local', 'cli', 'infra', 'test', 'bench']
      .flatMap(sourceFiles)
      .filter((f) => readFileSync(join(ROOT, f), 'utf8').includes(['DESIGN', 'md'].join('.')));
    expect(citing).toEqual([]);
  });
});
