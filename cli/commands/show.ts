import type { Command } from 'commander';
import type { Manifest } from '../../src/registry/index.ts';
import { NoVersionsError, parsePositiveInteger } from '../errors.ts';
import { dash, formatBytes, formatRatio, printFields, printJson } from '../output.ts';
import { withContext } from '../run.ts';
import { aliasLabels } from './versions.ts';

const tensor = (spec: Manifest['inputs'][number]): string =>
  `${spec.name} ${spec.datatype} [${spec.shape
    .map((dim, i) => (dim === -1 ? (spec.dimNames?.[i] ?? '?') : String(dim)))
    .join(', ')}]`;

function summary(manifest: Manifest, labels: string[]): [string, string][] {
  const q = manifest.quantization;
  const fields: [string, string][] = [
    ['model', manifest.model],
    ['version', `v${manifest.version}${labels.length > 0 ? ` (${labels.join(', ')})` : ''}`],
    ['served', manifest.served],
    [
      'fp32',
      `${formatBytes(manifest.variants.fp32.bytes)}  sha256 ${manifest.variants.fp32.sha256}`,
    ],
    [
      'int8',
      manifest.variants.int8 === undefined
        ? '-'
        : `${formatBytes(manifest.variants.int8.bytes)}  sha256 ${manifest.variants.int8.sha256}`,
    ],
  ];
  if (q !== undefined) {
    fields.push(
      ['quantization', `${q.scheme}: ${q.status}${q.reason === undefined ? '' : ` (${q.reason})`}`],
      ['nodes', `${q.nodesQuantized} quantized, ${q.nodesSkipped} skipped`],
      ['size ratio', formatRatio(q.sizeRatio)],
      ['latency ratio', formatRatio(q.latencyRatio)],
      [
        'accuracy',
        q.accuracy === undefined
          ? '-'
          : `cosine ${q.accuracy.cosine.toFixed(5)}, max abs error ${q.accuracy.maxAbsError.toExponential(2)}${
              q.accuracy.top1Agreement === undefined
                ? ''
                : `, top-1 agreement ${(q.accuracy.top1Agreement * 100).toFixed(1)}%`
            }`,
      ],
      ['decision', dash(q.decision)],
    );
  }
  fields.push(
    ['inputs', manifest.inputs.map(tensor).join('; ')],
    ['outputs', manifest.outputs.map(tensor).join('; ')],
    [
      'opsets',
      manifest.opsetImports
        .map((o) => `${o.domain === '' ? 'ai.onnx' : o.domain} ${o.version}`)
        .join(', '),
    ],
    ['producer', `${manifest.producer.name} ${manifest.producer.version}`.trim() || '-'],
    [
      'warm-up',
      manifest.warmup === undefined
        ? '-'
        : `${manifest.warmup.samples} samples, p50 ${manifest.warmup.p50Ms.toFixed(2)} ms, load ${manifest.warmup.loadMs.toFixed(1)} ms`,
    ],
    ['source', `${manifest.source.key} (etag ${manifest.source.etag})`],
    ['created', manifest.createdAt],
  );
  return fields;
}

export function registerShow(program: Command): void {
  program
    .command('show')
    .argument('<model>', 'model name')
    .argument('[version]', 'version number (default: production, else the latest)')
    .description('a version: served variant, sizes, quantization report, signature')
    .action(
      async (model: string, version: string | undefined, _options: unknown, command: Command) =>
        withContext(command, async ({ registry, options }) => {
          const aliases = (await registry.getAliases(model))?.aliases;
          let chosen: number;
          if (version !== undefined) {
            chosen = parsePositiveInteger(version, 'VERSION');
          } else if (aliases?.production !== undefined) {
            chosen = aliases.production;
          } else {
            const versions = await registry.listVersions(model);
            const latest = versions.at(-1);
            if (latest === undefined) throw new NoVersionsError(model);
            chosen = latest;
          }
          const manifest = await registry.getManifest(model, chosen);
          if (options.json) {
            printJson(manifest);
            return;
          }
          const fields = summary(manifest, aliasLabels(aliases, chosen));
          const held = aliases?.candidate?.version === chosen ? aliases.candidate.held : undefined;
          // why the guard keeps a baked candidate from production, as the schedule recorded it
          if (held !== undefined)
            fields.splice(2, 0, ['held', `${held.reason} (since ${held.since})`]);
          printFields(fields);
        }),
    );
}
