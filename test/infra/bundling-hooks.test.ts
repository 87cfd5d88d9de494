import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bundlingOptions } from '../../infra/maas-function.ts';
import type { Architecture } from '../../infra/settings.ts';

const ORT_BIN = ['node_modules', 'onnxruntime-node', 'bin', 'napi-v6'];
/** The platforms onnxruntime-node 1.30 ships, each with its binding. */
const SHIPPED = [
  'linux/x64',
  'linux/arm64',
  'darwin/x64',
  'darwin/arm64',
  'win32/x64',
  'win32/arm64',
];

/** Splits a hook command into argv as cmd.exe and bash both would: whitespace, double quotes. */
const argv = (command: string): string[] =>
  [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');

const fakeAsset = (platforms: readonly string[]): string => {
  const asset = mkdtempSync(join(tmpdir(), 'maas-hooks-'));
  for (const platform of platforms) {
    const dir = join(asset, ...ORT_BIN, ...platform.split('/'));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'onnxruntime_binding.node'), 'binding');
    writeFileSync(join(dir, 'libonnxruntime.so.1'), 'library');
  }
  writeFileSync(join(asset, 'index.mjs'), 'export const handler = () => 1;');
  return asset;
};

const platformsIn = (asset: string): string[] => {
  const bin = join(asset, ...ORT_BIN);
  return readdirSync(bin).flatMap((p) => readdirSync(join(bin, p)).map((a) => `${p}/${a}`));
};

/** Every hook command of the onnxruntime functions, for an asset folder. */
const hookCommands = (arch: Architecture, asset: string): string[] => {
  const hooks = bundlingOptions(arch, true).commandHooks;
  if (hooks === undefined) throw new Error('the onnxruntime functions have no bundling hooks');
  return [
    ...hooks.beforeBundling('/project', asset),
    ...hooks.beforeInstall('/project', asset),
    ...hooks.afterBundling('/project', asset),
  ];
};

const run = (command: string) => {
  const [file = '', ...args] = argv(command);
  return spawnSync(file, args, { shell: false, encoding: 'utf8' });
};

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe.each([
  ['arm64', 'linux/arm64'],
  ['x86_64', 'linux/x64'],
] as const)('bundling hooks for %s', (arch, kept) => {
  it('run without a shell (as on Windows) and leave only the Linux binaries of the target', () => {
    const asset = fakeAsset(SHIPPED);
    made.push(asset);
    const commands = hookCommands(arch, asset);
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) {
      expect(argv(command)[0], command).toBe('node');
      const result = run(command);
      expect(result.status, `${command}\n${result.stderr}`).toBe(0);
    }
    expect(platformsIn(asset)).toEqual([kept]);
    expect(
      existsSync(join(asset, ...ORT_BIN, ...kept.split('/'), 'onnxruntime_binding.node')),
    ).toBe(true);
    expect(existsSync(join(asset, 'index.mjs'))).toBe(true);
  });

  it('fail the build when the target binary is missing, removing nothing', () => {
    const asset = fakeAsset(SHIPPED.filter((p) => p !== kept));
    made.push(asset);
    const results = hookCommands(arch, asset).map(run);
    const failed = results.find((r) => r.status !== 0);
    expect(failed?.stderr).toMatch(/onnxruntime_binding\.node is missing/);
    expect(platformsIn(asset).sort()).toEqual(SHIPPED.filter((p) => p !== kept).sort());
  });
});

it('gives functions without onnxruntime no hooks at all', () => {
  expect(bundlingOptions('arm64', false).commandHooks).toBeUndefined();
});
