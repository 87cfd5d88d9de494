import { ExplainParameterError } from './errors.ts';
import type { ExplainMethod } from './types.ts';

export type BaselineChoice =
  | { kind: 'samples-mean' }
  | { kind: 'zeros' }
  /** flat values per input name */
  | { kind: 'explicit'; values: Readonly<Record<string, number[]>> };

/** A per-input window (or stride): one for every input, or by input name. */
export type WindowChoice = readonly number[] | Readonly<Record<string, readonly number[]>>;

/** `parameters` of an explain request, checked for form; the model checks the rest. */
export interface ExplainParameters {
  method: ExplainMethod;
  output?: string;
  target?: number;
  baseline: BaselineChoice;
  window?: WindowChoice;
  stride?: WindowChoice;
  budget: number;
  seed: number;
}

const METHODS: readonly ExplainMethod[] = ['kernel-shap', 'occlusion', 'auto'];

const show = (value: unknown): string => {
  if (Array.isArray(value)) {
    // name what is in it: `[1e400]` is "[Infinity (out of range)]", not "an array of 1"
    if (value.length <= 4 && value.every((v) => typeof v !== 'object' || v === null)) {
      return `[${value.map(show).join(', ')}]`;
    }
    return `an array of ${value.length}`;
  }
  if (typeof value === 'object' && value !== null) return 'an object';
  // 1e400 parses to Infinity, which JSON would show as null: say what the number became
  if (typeof value === 'number' && !Number.isFinite(value)) return `${value} (out of range)`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const sizes = (value: unknown, what: string): number[] => {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.length > 16 ||
    !value.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1)
  ) {
    throw new ExplainParameterError(
      `${what} must be a list of positive integers, one per trailing dim (e.g. [8, 8]), got ${show(value)}`,
    );
  }
  return value as number[];
};

const windowChoice = (value: unknown, what: string): WindowChoice | undefined => {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return sizes(value, `parameters.${what}`);
  if (isObject(value) && Object.keys(value).length > 0) {
    return Object.fromEntries(
      Object.entries(value).map(([name, v]) => [name, sizes(v, `parameters.${what}.${name}`)]),
    );
  }
  throw new ExplainParameterError(
    `parameters.${what} must be a list of sizes for every input (e.g. [8, 8]) or an object of ` +
      `input name to sizes, got ${show(value)}`,
  );
};

/** Flattens nested arrays of numbers, refusing anything else. */
const flatNumbers = (value: unknown, what: string): number[] => {
  const out: number[] = [];
  const walk = (node: unknown, depth: number): void => {
    if (Array.isArray(node) && depth < 32) {
      for (const item of node) walk(item, depth + 1);
      return;
    }
    if (typeof node !== 'number' || !Number.isFinite(node)) {
      throw new ExplainParameterError(
        `${what} must hold finite numbers (flat or nested like the input), found ${show(node)}`,
      );
    }
    out.push(node);
  };
  walk(value, 0);
  return out;
};

const baselineChoice = (value: unknown): BaselineChoice => {
  if (value === undefined || value === 'samples-mean') return { kind: 'samples-mean' };
  if (value === 'zeros') return { kind: 'zeros' };
  if (isObject(value) && Object.keys(value).length > 0) {
    return {
      kind: 'explicit',
      values: Object.fromEntries(
        Object.entries(value).map(([name, v]) => [
          name,
          flatNumbers(v, `parameters.baseline.${name}`),
        ]),
      ),
    };
  }
  throw new ExplainParameterError(
    `parameters.baseline must be "samples-mean", "zeros" or an object of input name to values ` +
      `shaped like that input, got ${show(value)}`,
  );
};

const optionalInteger = (
  value: unknown,
  what: string,
  min: number,
  max: number,
  hint: string,
): number | undefined => {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ExplainParameterError(
      `${what} must be an integer from ${min} to ${max}${hint}, got ${show(value)}`,
    );
  }
  return value;
};

/**
 * Reads the explain parameters of a V2 request's `parameters` (or the V1 body's). Their form
 * only: whether an output, target, window or baseline fits the model is checked against it.
 */
export const parseExplainParameters = (
  raw: unknown,
  caps: { defaultBudget: number; maxBudget: number },
): ExplainParameters => {
  if (raw !== undefined && !isObject(raw)) {
    throw new ExplainParameterError(
      `"parameters" must be an object such as {"method": "auto", "budget": 256}, got ${show(raw)}`,
    );
  }
  const p = raw ?? {};
  const method = p.method ?? 'auto';
  if (typeof method !== 'string' || !METHODS.includes(method as ExplainMethod)) {
    throw new ExplainParameterError(
      `parameters.method must be one of ${METHODS.map((m) => `"${m}"`).join(', ')}, got ${show(method)}`,
    );
  }
  if (p.output !== undefined && (typeof p.output !== 'string' || p.output === '')) {
    throw new ExplainParameterError(
      `parameters.output must be the name of one of the model's outputs, got ${show(p.output)}`,
    );
  }
  const budget =
    optionalInteger(
      p.budget,
      'parameters.budget',
      2,
      caps.maxBudget,
      ' (the cap of this deployment)',
    ) ?? caps.defaultBudget;
  const target = optionalInteger(p.target, 'parameters.target', 0, Number.MAX_SAFE_INTEGER, '');
  const seed = optionalInteger(p.seed, 'parameters.seed', 0, 0xffff_ffff, '') ?? 0;
  const window = windowChoice(p.window, 'window');
  const stride = windowChoice(p.stride, 'stride');
  return {
    method: method as ExplainMethod,
    ...(typeof p.output === 'string' ? { output: p.output } : {}),
    ...(target === undefined ? {} : { target }),
    baseline: baselineChoice(p.baseline),
    ...(window === undefined ? {} : { window }),
    ...(stride === undefined ? {} : { stride }),
    budget,
    seed,
  };
};
