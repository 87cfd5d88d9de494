import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { MaasError } from '../../src/errors/index.ts';
import { elementBytes, type FixedDatatype, halfToNumber } from '../../src/protocol/tensors.ts';
import { validateModelName } from '../../src/registry/index.ts';
import { type ApiResponse, callApiOk } from '../api.ts';
import { CliUsageError, parsePositiveInteger } from '../errors.ts';
import { printFields, printJson, printLine, printTable } from '../output.ts';
import { localDefaults, resolveTarget } from '../target.ts';

interface PredictOptions {
  version?: number;
  data: string;
}

/** values shown per output in the table; `--json` has them all */
const SHOWN_VALUES = 6;
const SHOWN_CHARS = 40;
const BODY_SHAPES =
  'an Open Inference Protocol V2 request {"inputs": [{"name", "datatype", "shape", "data"}]} or a V1 body {"instances": [...]}';

interface OutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown;
  parameters?: Record<string, unknown>;
}

interface InferResponse {
  model_name?: string;
  model_version?: string;
  outputs?: OutputTensor[];
}

/** A 2xx answer the CLI cannot read: not the V2 or V1 JSON it asked for. */
export class UnreadableResponseError extends MaasError {
  constructor(path: string, why: string) {
    super('UnreadableResponse', `the answer to ${path} is not an inference response: ${why}`, {
      details: { path },
    });
  }
}

export async function readRequest(source: string): Promise<string> {
  if (source === '-') {
    if (process.stdin.isTTY === true) {
      process.stderr.write('reading the request body from stdin (end with Ctrl-D)...\n');
    }
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(source, 'utf8');
  } catch (err) {
    throw new CliUsageError(`cannot read --data ${source}: ${(err as Error).message}`);
  }
}

/** V2 when the body has `inputs`, V1 when it has `instances`: the server checks the rest. */
export function protocolOf(text: string, source: string): 'v1' | 'v2' {
  const where = source === '-' ? 'the request on stdin' : `--data ${source}`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new CliUsageError(
      `${where} is not JSON (${(err as Error).message}): send ${BODY_SHAPES}`,
    );
  }
  if (Array.isArray(body)) {
    throw new CliUsageError(
      `${where} is a JSON array of ${body.length} (a samples file?): send one request body, such as its first element`,
    );
  }
  if (typeof body === 'object' && body !== null) {
    if ('inputs' in body) return 'v2';
    if ('instances' in body) return 'v1';
  }
  throw new CliUsageError(`${where} has neither "inputs" nor "instances": send ${BODY_SHAPES}`);
}

/** 64-bit integers stay exact: as numbers while safe, as strings beyond. */
const exactInteger = (value: bigint): number | string =>
  value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : String(value);

/** Little-endian elements of the binary tensor data extension, flat. */
function decodeElements(datatype: string, bytes: Uint8Array): unknown[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values: unknown[] = [];
  if (datatype === 'BYTES') {
    const text = new TextDecoder();
    for (let at = 0; at + 4 <= bytes.byteLength; ) {
      const length = view.getUint32(at, true);
      values.push(text.decode(bytes.subarray(at + 4, at + 4 + length)));
      at += 4 + length;
    }
    return values;
  }
  const readers: Record<FixedDatatype, (at: number) => unknown> = {
    BOOL: (at: number) => view.getUint8(at) !== 0,
    UINT8: (at: number) => view.getUint8(at),
    INT8: (at: number) => view.getInt8(at),
    UINT16: (at: number) => view.getUint16(at, true),
    INT16: (at: number) => view.getInt16(at, true),
    FP16: (at: number) => halfToNumber(view.getUint16(at, true)),
    UINT32: (at: number) => view.getUint32(at, true),
    INT32: (at: number) => view.getInt32(at, true),
    FP32: (at: number) => view.getFloat32(at, true),
    UINT64: (at: number) => exactInteger(view.getBigUint64(at, true)),
    INT64: (at: number) => exactInteger(view.getBigInt64(at, true)),
    FP64: (at: number) => view.getFloat64(at, true),
  };
  if (!Object.hasOwn(readers, datatype)) throw new Error(`unknown datatype ${datatype}`);
  const read = readers[datatype as FixedDatatype];
  const width = elementBytes(datatype as FixedDatatype);
  for (let at = 0; at + width <= bytes.byteLength; at += width) values.push(read(at));
  return values;
}

/**
 * A binary-extension answer (when the request asked for `binary_data_output`) read back into the
 * JSON form, so the table and `--json` show values either way.
 */
function decodeBinary(body: Uint8Array, headerLength: number, path: string): InferResponse {
  if (!Number.isSafeInteger(headerLength) || headerLength > body.byteLength) {
    throw new UnreadableResponseError(
      path,
      `Inference-Header-Content-Length ${headerLength} does not fit a ${body.byteLength}-byte body`,
    );
  }
  const response = parseJson(body.subarray(0, headerLength), path) as InferResponse;
  let at = headerLength;
  for (const output of response.outputs ?? []) {
    const size = output.parameters?.binary_data_size;
    if (typeof size !== 'number') continue;
    try {
      output.data = decodeElements(output.datatype, body.subarray(at, at + size));
    } catch (err) {
      throw new UnreadableResponseError(path, `output ${output.name}: ${(err as Error).message}`);
    }
    at += size;
    const { binary_data_size: _size, ...rest } = output.parameters ?? {};
    if (Object.keys(rest).length === 0) delete output.parameters;
    else output.parameters = rest;
  }
  return response;
}

function parseJson(bytes: Uint8Array, path: string): unknown {
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    throw new UnreadableResponseError(path, `not JSON: ${text.slice(0, 200)}`);
  }
}

function readResponse(response: ApiResponse, path: string): unknown {
  const headerLength = response.headers.get('inference-header-content-length');
  return headerLength === null
    ? parseJson(response.body, path)
    : decodeBinary(response.body, Number(headerLength), path);
}

const formatNumber = (value: number): string =>
  Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));

/** A value for people: numbers to 6 significant digits, long strings and arrays cut short. */
function formatValue(value: unknown): string {
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > SHOWN_CHARS ? `${quoted.slice(0, SHOWN_CHARS - 1)}…"` : quoted;
  }
  if (Array.isArray(value)) return `[${formatValues(value)}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([key, inner]) => `${key}: ${formatValue(inner)}`)
      .join(', ')}}`;
  }
  return String(value);
}

function formatValues(values: readonly unknown[]): string {
  const shown = values.slice(0, SHOWN_VALUES).map(formatValue).join(', ');
  return values.length > SHOWN_VALUES ? `${shown}, … (${values.length} in all)` : shown;
}

function printInferResponse(body: InferResponse, headers: Headers, model: string): void {
  const version = headers.get('x-maas-model-version') ?? body.model_version;
  const variant = headers.get('x-maas-variant');
  printFields([
    ['model', body.model_name ?? model],
    [
      'version',
      `${version === undefined ? '-' : `v${version}`}${variant === null ? '' : ` (${variant})`}`,
    ],
  ]);
  printLine();
  printTable(
    ['OUTPUT', 'DATATYPE', 'SHAPE', 'VALUES'],
    (body.outputs ?? []).map((output) => [
      output.name,
      output.datatype,
      `[${output.shape.join(', ')}]`,
      Array.isArray(output.data) ? formatValues(output.data.flat(Number.POSITIVE_INFINITY)) : '-',
    ]),
    'no outputs',
  );
}

function printPredictions(body: unknown, headers: Headers, model: string, path: string): void {
  const predictions =
    typeof body === 'object' && body !== null && 'predictions' in body
      ? body.predictions
      : undefined;
  if (!Array.isArray(predictions)) {
    throw new UnreadableResponseError(path, 'no "predictions" array');
  }
  const version = headers.get('x-maas-model-version');
  const variant = headers.get('x-maas-variant');
  printFields([
    ['model', model],
    [
      'version',
      `${version === null ? '-' : `v${version}`}${variant === null ? '' : ` (${variant})`}`,
    ],
  ]);
  printLine();
  printTable(
    ['ROW', 'PREDICTION'],
    predictions.map((prediction, row) => [String(row), formatValue(prediction)]),
    'no predictions',
  );
}

async function predict(name: string, opts: PredictOptions, command: Command): Promise<void> {
  const model = validateModelName(name);
  const target = resolveTarget(command);
  const json = command.optsWithGlobals<{ json?: boolean }>().json === true;
  const text = await readRequest(opts.data);
  const protocol = protocolOf(text, opts.data);
  if (protocol === 'v1' && opts.version !== undefined) {
    throw new CliUsageError(
      `--version pins a version on the V2 route only (V1 :predict serves what the aliases route to): send a V2 body {"inputs": [...]}`,
    );
  }
  const path =
    protocol === 'v1'
      ? `/v1/models/${model}:predict`
      : `/v2/models/${model}${opts.version === undefined ? '' : `/versions/${opts.version}`}/infer`;
  const response = await callApiOk(target, {
    method: 'POST',
    path,
    body: text,
    contentType: 'application/json',
  });
  const body = readResponse(response, path);
  if (json) printJson(body);
  else if (protocol === 'v1') printPredictions(body, response.headers, model, path);
  else printInferResponse(body as InferResponse, response.headers, model);
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .argument('<model>', 'model name')
    .requiredOption(
      '--data <file>',
      'the request body: a V2 inference request (or a V1 {"instances": ...} body) in a JSON file, - for stdin',
    )
    .option('--version <n>', 'a pinned version (default: what the aliases route to)', (value) =>
      parsePositiveInteger(value, '--version'),
    )
    .description(
      `run an inference through the HTTP API (local: ${localDefaults().apiUrl}, set by PORT; with --stack: the stack's, SigV4-signed) and print its outputs`,
    )
    .action(async (model: string, opts: PredictOptions, command: Command) =>
      predict(model, opts, command),
    );
}
