import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const run = (
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd = ROOT,
): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({
        code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1,
        stdout,
        stderr,
      }),
    );
  });

describe("onnxruntime-node's install script", () => {
  it('is skipped by the project config on every npm, allowScripts or not', async () => {
    const pkg = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8')) as {
      allowScripts: Record<string, boolean>;
    };
    // npm >= 11.16 does not run it at all
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    // npm 10 runs it, with the project's .npmrc in its environment
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.ONNXRUNTIME_NODE_INSTALL;
    delete env.npm_config_onnxruntime_node_install;
    const config = await run('npm', ['config', 'get', 'onnxruntime-node-install'], env);
    expect(config.stdout.trim()).toBe('skip');
  }, 60_000);

  it('exits at once, fetching nothing, with the setting npm hands it', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, npm_config_onnxruntime_node_install: 'skip' };
    delete env.ONNXRUNTIME_NODE_INSTALL;
    // no proxy or DNS can answer these: a download attempt would fail the script
    env.HTTPS_PROXY = 'http://127.0.0.1:9';
    env.https_proxy = 'http://127.0.0.1:9';
    const script = `${ROOT}node_modules/onnxruntime-node/script/install.js`;
    const result = await run(
      process.execPath,
      [script],
      env,
      `${ROOT}node_modules/onnxruntime-node`,
    );
    expect(result).toMatchObject({ code: 0, stderr: '' });
  }, 60_000);
});
