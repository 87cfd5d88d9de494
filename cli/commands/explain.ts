import type { Command } from 'commander';
import { validateModelName } from '../../src/registry/index.ts';
import { callApiOk } from '../api.ts';
import { CliUsageError, parsePositiveInteger } from '../errors.ts';
import { printFields, printJson, printLine } from '../output.ts';
import { localDefaults, resolveTarget } from '../target.ts';
import { protocolOf, readRequest, UnreadableResponseError } from './predict.ts';

interface ExplainOptions {
  version?: number;
  data: string;
  method?: string;
  budget?: number;
  window?: number[];
  output?: string;
  target?: number;
  baseline?: string;
  seed?: number;
  top: number;
}

interface Attribution {
  name: string;
  shape: number[];
  data: number[];
}

/** What the server answers per explanation (V2 has one, V1 one per instance). */
interface Explained {
  method: string;
  mode: string;
  players: number;
  grouping: string;
  output: string;
  target: number;
  prediction: number;
  base_value: number;
  baseline: string;
  baseline_note?: string;
  evaluations: number;
  attributions: Attribution[] | unknown;
}

const BAR_WIDTH = 30;
const METHODS = ['kernel-shap', 'occlusion', 'auto'];

const parseWindow = (value: string): number[] => {
  const sizes = value.split(/[x×,]/).map((part) => Number(part.trim()));
  if (sizes.length === 0 || !sizes.every((n) => Number.isSafeInteger(n) && n >= 1)) {
    throw new CliUsageError(
      `--window ${value} is not a window: send sizes of the trailing dims, e.g. 8x8 or 4`,
    );
  }
  return sizes;
};

const parseNonNegative = (value: string, flag: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new CliUsageError(`${flag} must be a non-negative integer, got ${value}`);
  }
  return n;
};

const num = (v: number): string => String(Number(v.toPrecision(4)));

/** `input[0, 2]`: an element's index in its input, the batch dim of one left out. */
const label = (name: string, shape: readonly number[], flat: number): string => {
  const dims = shape[0] === 1 && shape.length > 1 ? shape.slice(1) : shape;
  const index: number[] = [];
  let rest = flat;
  for (let d = dims.length - 1; d >= 0; d--) {
    const size = dims[d] ?? 1;
    index.unshift(rest % size);
    rest = Math.floor(rest / size);
  }
  return `${name}[${index.join(', ')}]`;
};

const flatten = (value: unknown): number[] =>
  Array.isArray(value) ? value.flat(Number.POSITIVE_INFINITY).map(Number) : [];

const shapeOf = (value: unknown): number[] => {
  const shape: number[] = [];
  let node = value;
  while (Array.isArray(node)) {
    shape.push(node.length);
    node = node[0];
  }
  return shape;
};

/** V2 answers carry named tensors; V1 a nested array shaped like its instance. */
const attributionsOf = (e: Explained, inputName: string): Attribution[] =>
  Array.isArray(e.attributions) &&
  e.attributions.every((a) => typeof a === 'object' && a !== null && 'data' in a)
    ? (e.attributions as Attribution[])
    : [{ name: inputName, shape: shapeOf(e.attributions), data: flatten(e.attributions) }];

/** The top attributions by size as a bar list: `█` pushes the output up, `░` pulls it down. */
const printBars = (e: Explained, top: number, inputName: string): void => {
  const items = attributionsOf(e, inputName).flatMap((a) =>
    a.data.map((value, i) => ({ label: label(a.name, a.shape, i), value })),
  );
  items.sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
  const shown = items.slice(0, top);
  const scale = Math.max(...shown.map((i) => Math.abs(i.value)), Number.MIN_VALUE);
  const width = Math.max(...shown.map((i) => i.label.length), 7);
  printLine(`${'FEATURE'.padEnd(width)}  ${'ATTRIBUTION'.padStart(11)}`);
  for (const item of shown) {
    const bar = (item.value >= 0 ? '█' : '░').repeat(
      Math.max(item.value === 0 ? 0 : 1, Math.round((Math.abs(item.value) / scale) * BAR_WIDTH)),
    );
    const value = `${item.value >= 0 ? '+' : ''}${num(item.value)}`;
    printLine(`${item.label.padEnd(width)}  ${value.padStart(11)}  ${bar}`);
  }
  if (items.length > shown.length) {
    printLine(`… ${items.length - shown.length} more (--top N, or --json for all)`);
  }
};

const printExplained = (e: Explained, top: number, inputName: string, total?: number): void => {
  printFields([
    [
      'method',
      `${e.method} (${e.mode}, ${e.players} ${e.grouping === 'elements' ? 'features' : 'groups'})`,
    ],
    ['output', `${e.output}[${e.target}] = ${num(e.prediction)}`],
    [
      'baseline',
      `${e.baseline}, f(baseline) = ${num(e.base_value)}${e.baseline_note ? ` (${e.baseline_note})` : ''}`,
    ],
    ['cost', `${e.evaluations} evaluations${total === undefined ? '' : `, ${num(total)} ms`}`],
  ]);
  printLine();
  printBars(e, top, inputName);
};

async function explain(name: string, opts: ExplainOptions, command: Command): Promise<void> {
  const model = validateModelName(name);
  const target = resolveTarget(command);
  const json = command.optsWithGlobals<{ json?: boolean }>().json === true;
  const text = await readRequest(opts.data);
  const protocol = protocolOf(text, opts.data);
  if (protocol === 'v1' && opts.version !== undefined) {
    throw new CliUsageError(
      '--version pins a version on the V2 route only: send a V2 body {"inputs": [...]}',
    );
  }
  if (opts.method !== undefined && !METHODS.includes(opts.method)) {
    throw new CliUsageError(`--method must be one of ${METHODS.join(', ')}, got ${opts.method}`);
  }
  const body = JSON.parse(text) as Record<string, unknown>;
  const given =
    typeof body.parameters === 'object' && body.parameters !== null ? body.parameters : {};
  body.parameters = {
    ...given,
    ...(opts.method === undefined ? {} : { method: opts.method }),
    ...(opts.budget === undefined ? {} : { budget: opts.budget }),
    ...(opts.window === undefined ? {} : { window: opts.window }),
    ...(opts.output === undefined ? {} : { output: opts.output }),
    ...(opts.target === undefined ? {} : { target: opts.target }),
    ...(opts.baseline === undefined ? {} : { baseline: opts.baseline }),
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
  };
  const path =
    protocol === 'v1'
      ? `/v1/models/${model}:explain`
      : `/v2/models/${model}${opts.version === undefined ? '' : `/versions/${opts.version}`}/explain`;
  const response = await callApiOk(target, {
    method: 'POST',
    path,
    body: JSON.stringify(body),
    contentType: 'application/json',
  });
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(new TextDecoder().decode(response.body)) as Record<string, unknown>;
  } catch {
    throw new UnreadableResponseError(path, 'not JSON');
  }
  if (json) {
    printJson(answer);
    return;
  }
  const version = response.headers.get('x-maas-model-version');
  const variant = response.headers.get('x-maas-variant');
  printFields([
    ['model', model],
    ['version', `${version === null ? '-' : `v${version}`}${variant ? ` (${variant})` : ''}`],
  ]);
  const timing = answer.timing as { total_ms?: number } | undefined;
  const explanations = (protocol === 'v1' ? answer.explanations : [answer]) as
    | Explained[]
    | undefined;
  if (!Array.isArray(explanations)) throw new UnreadableResponseError(path, 'no explanation');
  const single = explanations.length === 1;
  explanations.forEach((e, i) => {
    printLine();
    if (!single) printLine(`instance ${i}`);
    printExplained(e, opts.top, 'x', single ? timing?.total_ms : undefined);
  });
  if (!single && timing?.total_ms !== undefined) {
    printLine();
    printLine(`${explanations.length} explanations in ${num(timing.total_ms)} ms`);
  }
}

export function registerExplain(program: Command): void {
  program
    .command('explain')
    .argument('<model>', 'model name')
    .requiredOption(
      '--data <file>',
      'the example: a V2 inference request with a batch of one (or a V1 {"instances": ...} body) in a JSON file, - for stdin',
    )
    .option('--version <n>', 'a pinned version (default: what the aliases route to)', (value) =>
      parsePositiveInteger(value, '--version'),
    )
    .option('--method <method>', 'kernel-shap | occlusion | auto (default: auto)')
    .option('--budget <n>', 'model evaluations allowed (default: the server default)', (value) =>
      parsePositiveInteger(value, '--budget'),
    )
    .option(
      '--window <sizes>',
      'groups or occlusion window over the trailing dims, e.g. 8x8',
      parseWindow,
    )
    .option('--output <name>', 'the output explained (default: the first)')
    .option(
      '--target <index>',
      'flat index into that output (default: its top class, else 0)',
      (value) => parseNonNegative(value, '--target'),
    )
    .option('--baseline <kind>', 'samples-mean | zeros (default: samples-mean)')
    .option('--seed <n>', 'seed of the sampled coalitions', (value) =>
      parseNonNegative(value, '--seed'),
    )
    .option('--top <n>', 'attributions shown', (value) => parsePositiveInteger(value, '--top'), 10)
    .description(
      `explain a prediction through the HTTP API (local: ${localDefaults().apiUrl}): which input elements moved the output, as a bar list`,
    )
    .action(async (model: string, opts: ExplainOptions, command: Command) =>
      explain(model, opts, command),
    );
}
