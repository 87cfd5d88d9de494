import type { Command } from 'commander';
import { LOCAL_TIME_SCALE } from '../../local/guard/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { guardSettings } from '../../src/guard/index.ts';
import { startConsole } from '../console/index.ts';
import { CliUsageError } from '../errors.ts';
import { printLine } from '../output.ts';
import { resolveTarget } from '../target.ts';

interface ConsoleOptions {
  port?: number;
  metricsFrom?: string;
}

const parsePort = (value: string): number => {
  const port = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(port) || port < 0 || port > 65_535) {
    throw new CliUsageError(
      `--port must be a port number from 0 to 65535, got ${JSON.stringify(value)}`,
    );
  }
  return port;
};

/**
 * `maas console`: the web page on this machine, against the local stack or, with `--stack`, a
 * deployed one. Runs until Ctrl-C.
 */
async function runConsole(options: ConsoleOptions, command: Command): Promise<void> {
  const target = resolveTarget(command);
  const config = loadConfig();
  // The charts draw the thresholds the guard judges by: the local stack's run on its time scale.
  const settings = guardSettings(
    target.kind === 'local'
      ? { MAAS_GUARD_TIME_SCALE: String(LOCAL_TIME_SCALE), ...process.env }
      : process.env,
  );
  const running = await startConsole({
    target,
    port: options.port ?? config.local.consolePort,
    definitions: settings.definitions,
    judge: { settleMs: settings.settleMs, watchWindowMs: settings.watchWindowMs },
    ...(options.metricsFrom === undefined ? {} : { metricsFrom: options.metricsFrom }),
  });
  printLine(`maas console: ${running.url}`);
  printLine(
    target.kind === 'local'
      ? `  registry  ${target.s3Endpoint} bucket ${target.bucket}; API ${target.apiUrl}; figures from ${options.metricsFrom ?? `the stack's console (http://127.0.0.1:${config.local.consolePort})`}`
      : `  stack ${target.stackName}: bucket ${target.bucket}, API ${target.apiUrl}, figures from CloudWatch in ${target.region}`,
  );
  printLine('Ctrl-C stops it.');
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await running.close();
}

export function registerConsole(program: Command): void {
  program
    .command('console')
    .option('--port <port>', 'port on 127.0.0.1 (default: MAAS_CONSOLE_PORT, else 3001)', parsePort)
    .option(
      '--metrics-from <url>',
      'local stack only: the console of the running stack, which holds its figures (default: http://127.0.0.1:MAAS_CONSOLE_PORT, what `npm start` runs)',
    )
    .description(
      'serve the web console on 127.0.0.1: models, versions, canary, live charts, history, promote and roll back',
    )
    .action(async (options: ConsoleOptions, command: Command) => runConsole(options, command));
}
