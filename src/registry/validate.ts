import { CorruptRecordError } from './errors.ts';
import { keys } from './keys.ts';
import type { Aliases, Manifest, ServedVariant } from './types.ts';

/**
 * Records are checked as they are read, not trusted because the registry wrote them: a record
 * is an S3 object that anyone with write access could have replaced, truncated or hand-edited.
 * A manifest must name its own version's variant keys (a manifest pointing at another version's
 * or another model's bytes would serve them under this version's name), and every field the
 * serving path and the guard use must have its type. Anything else is a CorruptRecordError
 * naming the object, which answers 503 for that model alone.
 */

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isVersion = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
const isSha256 = (value: unknown): value is string =>
  typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
const isByteCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

class Problems {
  readonly found: string[] = [];
  check(ok: boolean, problem: string): void {
    if (!ok) this.found.push(problem);
  }
}

const tensorProblems = (p: Problems, field: string, value: unknown): void => {
  if (!Array.isArray(value) || value.length === 0) {
    p.check(false, `${field} must be a non-empty list of tensors`);
    return;
  }
  value.forEach((tensor: unknown, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(tensor)) {
      p.check(false, `${at} must be an object`);
      return;
    }
    p.check(typeof tensor.name === 'string' && tensor.name !== '', `${at}.name must be a string`);
    p.check(typeof tensor.datatype === 'string', `${at}.datatype must be a string`);
    p.check(
      Array.isArray(tensor.shape) &&
        tensor.shape.every((d: unknown) => typeof d === 'number' && Number.isInteger(d) && d >= -1),
      `${at}.shape must be a list of integers (-1 for a dynamic dimension)`,
    );
  });
};

/** The manifest at `key`, which must be that of `model` version `version`. */
export function validateManifest(
  value: unknown,
  key: string,
  model: string,
  version: number,
): Manifest {
  const p = new Problems();
  if (!isObject(value)) throw corrupt(key, model, version, ['the record is not a JSON object']);
  p.check(value.model === model, `model must be ${JSON.stringify(model)}`);
  p.check(value.version === version, `version must be ${version}`);
  p.check(value.served === 'fp32' || value.served === 'int8', 'served must be "fp32" or "int8"');
  const variants = value.variants;
  if (!isObject(variants)) {
    p.check(false, 'variants must be an object');
  } else {
    for (const variant of ['fp32', 'int8'] as const satisfies readonly ServedVariant[]) {
      const info = variants[variant];
      if (info === undefined && variant === 'int8') continue;
      const at = `variants.${variant}`;
      if (!isObject(info)) {
        p.check(false, `${at} must be an object`);
        continue;
      }
      const own = keys.variant(model, version, variant);
      p.check(
        info.key === own,
        `${at}.key must be this version's own ${JSON.stringify(own)}, not ${JSON.stringify(info.key)}`,
      );
      p.check(isSha256(info.sha256), `${at}.sha256 must be 64 lower-case hex digits`);
      p.check(isByteCount(info.bytes), `${at}.bytes must be a positive integer`);
    }
    if (value.served === 'int8')
      p.check(isObject(variants.int8), 'served is int8 but variants.int8 is missing');
  }
  tensorProblems(p, 'inputs', value.inputs);
  tensorProblems(p, 'outputs', value.outputs);
  p.check(typeof value.createdAt === 'string', 'createdAt must be a string');
  if (p.found.length > 0) throw corrupt(key, model, version, p.found);
  return value as unknown as Manifest;
}

/** `aliases.json` of `model`; missing guard lists read as empty, as the guard treats them. */
export function validateAliases(value: unknown, key: string, model: string): Aliases {
  const p = new Problems();
  if (!isObject(value)) throw corrupt(key, model, undefined, ['the record is not a JSON object']);
  p.check(value.model === model, `model must be ${JSON.stringify(model)}`);
  p.check(
    value.production === undefined || isVersion(value.production),
    'production must be a version number (a positive integer)',
  );
  const candidate = value.candidate;
  if (candidate !== undefined) {
    if (!isObject(candidate)) {
      p.check(false, 'candidate must be an object');
    } else {
      p.check(isVersion(candidate.version), 'candidate.version must be a positive integer');
      p.check(
        typeof candidate.weight === 'number' && candidate.weight >= 0 && candidate.weight <= 1,
        'candidate.weight must be a number from 0 to 1',
      );
      p.check(
        candidate.bakeUntil === undefined || typeof candidate.bakeUntil === 'string',
        'candidate.bakeUntil must be an ISO time',
      );
    }
  }
  for (const list of ['knownGood', 'rolledBack'] as const) {
    const versions = value[list];
    p.check(
      versions === undefined || (Array.isArray(versions) && versions.every(isVersion)),
      `${list} must be a list of version numbers`,
    );
  }
  if (p.found.length > 0) throw corrupt(key, model, undefined, p.found);
  return {
    ...(value as unknown as Aliases),
    knownGood: (value.knownGood as number[] | undefined) ?? [],
    rolledBack: (value.rolledBack as number[] | undefined) ?? [],
  };
}

const corrupt = (
  key: string,
  model: string,
  version: number | undefined,
  problems: readonly string[],
): CorruptRecordError =>
  new CorruptRecordError(key, new TypeError(problems.join('; ')), { model, version, problems });
