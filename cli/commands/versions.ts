import type { Command } from 'commander';
import { type Aliases, type Manifest, normalizeAliases } from '../../src/registry/index.ts';
import { formatBytes, printJson, printTable } from '../output.ts';
import { withContext } from '../run.ts';

/** `production`, `candidate`, `rolled back`: what the aliases say about a version. */
export function aliasLabels(aliases: Aliases | undefined, version: number): string[] {
  if (aliases === undefined) return [];
  const labels: string[] = [];
  if (aliases.production === version) labels.push('production');
  if (aliases.candidate?.version === version) labels.push('candidate');
  // records written before `rolledBack` existed lack it
  if (normalizeAliases(aliases).rolledBack.includes(version)) labels.push('rolled back');
  return labels;
}

export function registerVersions(program: Command): void {
  program
    .command('versions')
    .argument('<model>', 'model name')
    .description('list the registered versions of a model')
    .action(async (model: string, _options: unknown, command: Command) =>
      withContext(command, async ({ registry, options }) => {
        const versions = await registry.listVersions(model);
        const [manifests, aliases] = await Promise.all([
          Promise.all(versions.map((version) => registry.getManifest(model, version))),
          registry.getAliases(model),
        ]);
        const rows = manifests.map((manifest: Manifest) => ({
          version: manifest.version,
          served: manifest.served,
          fp32Bytes: manifest.variants.fp32.bytes,
          int8Bytes: manifest.variants.int8?.bytes,
          createdAt: manifest.createdAt,
          aliases: aliasLabels(aliases?.aliases, manifest.version),
        }));
        if (options.json) {
          printJson({ model, versions: rows });
          return;
        }
        printTable(
          ['VERSION', 'SERVED', 'FP32', 'INT8', 'CREATED', 'ALIASES'],
          rows.map((row) => [
            `v${row.version}`,
            row.served,
            formatBytes(row.fp32Bytes),
            row.int8Bytes === undefined ? '-' : formatBytes(row.int8Bytes),
            row.createdAt,
            row.aliases.join(', ') || '-',
          ]),
          `model "${model}" has no registered version yet: see \`maas history ${model}\``,
        );
      }),
    );
}
