import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';

/** `bench/results/`: gitignored, one JSON file per benchmark. */
export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

export type Cell = string | number | undefined;

const show = (v: Cell): string => {
  if (v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
};

/** Prints rows under a title as an aligned text table: text left, numbers right. */
export const printTable = (title: string, header: readonly string[], rows: readonly Cell[][]) => {
  const cells = [header.map(String), ...rows.map((r) => r.map(show))];
  const numeric = header.map((_, c) => rows.every((r) => typeof r[c] !== 'string'));
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((v, c) => (numeric[c] ? v.padStart(widths[c]!) : v.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  console.log(`\n${title}`);
  console.log(line(cells[0]!));
  console.log(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) console.log(line(r));
};

/** Where and on what a benchmark ran, so figures from different machines are not compared blind. */
export const machine = () => ({
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  node: process.version,
  onnxruntime: ort.env.versions.node ?? 'unknown',
  platform: `${process.platform}-${process.arch}`,
});

/** Writes `bench/results/<name>.json` and says where. */
export const writeResults = async (name: string, results: Record<string, unknown>) => {
  await mkdir(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  const body = { benchmark: name, at: new Date().toISOString(), machine: machine(), ...results };
  await writeFile(path, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`\nwrote ${relative(process.cwd(), path)}`);
};
