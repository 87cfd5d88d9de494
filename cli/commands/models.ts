import type { Command } from 'commander';
import type { CandidateAlias } from '../../src/registry/index.ts';
import { dash, printJson, printTable } from '../output.ts';
import { withContext } from '../run.ts';

export const describeCandidate = (candidate: CandidateAlias | undefined): string =>
  candidate === undefined
    ? '-'
    : `v${candidate.version} at ${Math.round(candidate.weight * 1000) / 10}% until ${candidate.bakeUntil}` +
      (candidate.held === undefined ? '' : ` (held: ${candidate.held.code})`);

export function registerModels(program: Command): void {
  program
    .command('models')
    .description('list the models with their production and candidate versions')
    .action(async (_options: unknown, command: Command) =>
      withContext(command, async ({ registry, options }) => {
        const models = await registry.listModelsSummary();
        if (options.json) {
          printJson(models);
          return;
        }
        printTable(
          ['MODEL', 'PRODUCTION', 'CANDIDATE'],
          models.map((model) => [
            model.name,
            model.production === undefined ? '-' : `v${dash(model.production)}`,
            describeCandidate(model.candidate),
          ]),
          'no models yet: push one with `maas push <file.onnx> --model <name>`',
        );
      }),
    );
}
