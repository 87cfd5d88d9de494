import type { Command } from 'commander';
import { checkCanaryWeight, setCanaryWeight } from '../../src/guard/index.ts';
import { CliUsageError } from '../errors.ts';
import { printJson, printLine } from '../output.ts';
import { withContext } from '../run.ts';

const parseWeight = (value: string): number => {
  const weight = Number(value);
  if (value.trim() === '' || Number.isNaN(weight)) {
    throw new CliUsageError(`--weight must be a number from 0 to 1, got ${JSON.stringify(value)}`);
  }
  return checkCanaryWeight('', weight);
};

export function registerCanary(program: Command): void {
  program
    .command('canary')
    .argument('<model>', 'model name')
    .requiredOption('--weight <weight>', 'share of traffic for the candidate, 0 to 1', parseWeight)
    .description("change the candidate's share of traffic (its bake time stays)")
    .action(async (model: string, local: { weight: number }, command: Command) =>
      withContext(command, async ({ registry, options }) => {
        const outcome = await setCanaryWeight(registry, model, local.weight);
        if (options.json) {
          printJson(outcome);
          return;
        }
        printLine(
          outcome.changed
            ? `${model}: candidate v${outcome.version} takes ${outcome.weight} of the traffic (was ${outcome.previousWeight})`
            : `${model}: candidate v${outcome.version} already takes ${outcome.weight}; nothing changed`,
        );
      }),
    );
}
