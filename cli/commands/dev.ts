import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * `npm start` under another name: the local stack in a child process, in the project directory
 * so its data lands where `npm start` keeps it. The child gets a process group of its own, so a
 * Ctrl-C reaches it once, through this process, rather than twice (terminal and forwarding).
 */
async function dev(): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/main.ts'], {
    cwd: ROOT,
    stdio: 'inherit',
    detached: process.platform !== 'win32',
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  // If this process dies of an error, the stack must not outlive it.
  const stopChild = () => child.kill('SIGTERM');
  process.on('exit', stopChild);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        // A child ended by a signal exits as shells report it: 128 + the signal's number.
        resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])),
      );
    });
  } finally {
    for (const signal of FORWARDED) process.off(signal, forward);
    process.off('exit', stopChild);
  }
}

export function registerDev(program: Command): void {
  program
    .command('dev')
    .description('run the local stack (the same as `npm start`): S3, the HTTP API, ingest, guard')
    .action(async () => {
      process.exitCode = await dev();
    });
}
