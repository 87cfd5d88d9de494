import { readFile, stat, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  type Datatype,
  ModelRejectedError,
  type ModelSignature,
  type TensorSpec,
  validateModel,
} from '../../src/onnx/index.ts';
import { CliUsageError } from '../errors.ts';
import { formatBytes, printJson, printLine, printTable } from '../output.ts';

interface InspectOptions {
  template?: string;
}

/** The value a template fills in for a datatype: the right JSON type, to be replaced by real data. */
const placeholder = (datatype: Datatype): number | boolean | string =>
  datatype === 'BOOL' ? false : datatype === 'BYTES' ? '' : 0;

/**
 * One V2 request body with every input at its declared shape (dynamic dims as 1), the form
 * `--samples` takes: a JSON array of such bodies. Ingest runs the model on these instead of
 * synthesized inputs.
 */
export function samplesTemplate(inputs: readonly TensorSpec[]): unknown[] {
  return [
    {
      inputs: inputs.map((input) => {
        const shape = input.shape.map((dim) => (dim < 0 ? 1 : dim));
        const count = shape.reduce((n, dim) => n * dim, 1);
        return {
          name: input.name,
          datatype: input.datatype,
          shape,
          data: Array.from({ length: count }, () => placeholder(input.datatype)),
        };
      }),
    },
  ];
}

const shapeText = (spec: TensorSpec): string =>
  `[${spec.shape.map((dim, i) => (dim < 0 ? (spec.dimNames?.[i] ?? '?') : String(dim))).join(', ')}]`;

const opsetText = (signature: ModelSignature): string =>
  signature.opsetImports.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ');

async function inspect(file: string, opts: InspectOptions, json: boolean): Promise<void> {
  const bytes = await readFile(file).catch((err: Error) => {
    throw new CliUsageError(`cannot read ${file}: ${err.message}`);
  });
  const { size } = await stat(file);
  let signature: ModelSignature;
  try {
    signature = validateModel(new Uint8Array(bytes)).signature;
  } catch (err) {
    if (!(err instanceof ModelRejectedError)) throw err;
    if (json)
      printJson({ file, bytes: size, verdict: 'rejected', code: err.code, reason: err.message });
    else
      printLine(
        `${file} (${formatBytes(size)}): ingest would reject it (${err.code}): ${err.message}`,
      );
    process.exitCode = 1;
    return;
  }
  const template = samplesTemplate(signature.inputs);
  if (opts.template !== undefined) {
    await writeFile(opts.template, `${JSON.stringify(template, null, 2)}\n`);
  }
  if (json) {
    printJson({
      file,
      bytes: size,
      verdict: 'valid',
      irVersion: signature.irVersion,
      opsetImports: signature.opsetImports,
      producer: signature.producer,
      nodes: signature.nodeCount,
      parameters: signature.parameterCount,
      inputs: signature.inputs,
      outputs: signature.outputs,
      samplesTemplate: template,
    });
    return;
  }
  printLine(
    `${file}: ${formatBytes(size)}, IR ${signature.irVersion}, opset ${opsetText(signature)}, ${signature.nodeCount} nodes, ${signature.parameterCount.toLocaleString('en-US')} parameters, from ${signature.producer.name || 'an unnamed producer'} ${signature.producer.version}`.trimEnd(),
  );
  printLine();
  printTable(
    ['', 'name', 'datatype', 'shape'],
    [
      ...signature.inputs.map((t) => ['input', t.name, t.datatype, shapeText(t)]),
      ...signature.outputs.map((t) => ['output', t.name, t.datatype, shapeText(t)]),
    ],
  );
  printLine();
  printLine(
    'verdict: passes validation (format, operators, types, caps); ingest then loads it in onnxruntime and runs it on the samples',
  );
  printLine();
  if (opts.template !== undefined) {
    printLine(
      `samples template written to ${opts.template}: put real inputs in it, then push with --samples ${opts.template}`,
    );
  } else {
    printLine(
      'samples template (real inputs in place of the zeros, then `maas push ... --samples FILE`; --template FILE writes it):',
    );
    printLine(JSON.stringify(template));
  }
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .argument('<file>', 'the .onnx model file')
    .option('--template <file>', 'write the samples template to this file')
    .description(
      'check a model as ingest would, without uploading: signature, validation verdict, a samples template for --samples',
    )
    .action(async (file: string, opts: InspectOptions, command: Command) =>
      inspect(file, opts, command.optsWithGlobals<{ json?: boolean }>().json === true),
    );
}
