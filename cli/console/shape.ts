import { MaasError } from '../../src/errors/index.ts';
import type { Aliases, Manifest } from '../../src/registry/index.ts';

/** A registry record that parses as JSON but cannot be shown; answered 502 like a corrupt one. */
export class MisshapenRecordError extends MaasError {
  constructor(key: string, problem: string) {
    super(
      'CorruptRecord',
      `${key} is not a valid registry record (${problem}); restore it or delete it`,
      {
        details: { key },
      },
    );
  }
}

/**
 * The registry parses its records as any JSON object; the page reads fields of them. A record that
 * is JSON but not the shape written by ingest and the guard (edited by hand, written by an older
 * or foreign tool) is named here, so the console shows it as unreadable instead of the page
 * failing on it. Each function answers what is wrong, or `undefined` when the record is usable.
 */

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isVersion = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 1;
const isFiniteNumber = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);

function tensorsProblem(value: unknown, field: string): string | undefined {
  if (!Array.isArray(value)) return `"${field}" is not a list of tensors`;
  for (const [i, spec] of value.entries()) {
    if (
      !isObject(spec) ||
      typeof spec.name !== 'string' ||
      typeof spec.datatype !== 'string' ||
      !Array.isArray(spec.shape) ||
      !spec.shape.every((d) => Number.isSafeInteger(d))
    ) {
      return `"${field}[${i}]" is not a tensor (name, datatype, shape of integers)`;
    }
  }
  return undefined;
}

export function manifestProblem(manifest: Manifest): string | undefined {
  const m = manifest as unknown as Record<string, unknown>;
  if (typeof m.served !== 'string') return '"served" is not a variant name';
  if (!isObject(m.variants) || !isObject(m.variants.fp32) || !isFiniteNumber(m.variants.fp32.bytes))
    return '"variants.fp32" is missing or has no size';
  if (
    m.variants.int8 !== undefined &&
    !(isObject(m.variants.int8) && isFiniteNumber(m.variants.int8.bytes))
  )
    return '"variants.int8" has no size';
  if (!isObject(m.source) || typeof m.source.key !== 'string') return '"source.key" is missing';
  const tensors = tensorsProblem(m.inputs, 'inputs') ?? tensorsProblem(m.outputs, 'outputs');
  if (tensors !== undefined) return tensors;
  const q = m.quantization;
  if (q !== undefined) {
    if (!isObject(q)) return '"quantization" is not an object';
    if (
      q.accuracy !== undefined &&
      !(
        isObject(q.accuracy) &&
        isFiniteNumber(q.accuracy.cosine) &&
        isFiniteNumber(q.accuracy.maxAbsError)
      )
    )
      return '"quantization.accuracy" has no cosine or maxAbsError figure';
  }
  const w = m.warmup;
  if (w !== undefined && !(isObject(w) && isFiniteNumber(w.p50Ms) && isFiniteNumber(w.loadMs)))
    return '"warmup" has no p50Ms or loadMs figure';
  return undefined;
}

export function aliasesProblem(aliases: Aliases): string | undefined {
  const a = aliases as unknown as Record<string, unknown>;
  if (a.production !== undefined && !isVersion(a.production))
    return '"production" is not a version number';
  const c = a.candidate;
  if (c !== undefined) {
    if (
      !isObject(c) ||
      !isVersion(c.version) ||
      !isFiniteNumber(c.weight) ||
      (c.weight as number) < 0 ||
      (c.weight as number) > 1 ||
      typeof c.bakeUntil !== 'string' ||
      Number.isNaN(Date.parse(c.bakeUntil))
    )
      return '"candidate" is not {version, weight from 0 to 1, bakeUntil time}';
  }
  for (const field of ['knownGood', 'rolledBack'] as const) {
    const list = a[field];
    if (list !== undefined && !(Array.isArray(list) && list.every(isVersion)))
      return `"${field}" is not a list of version numbers`;
  }
  return undefined;
}
