import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Architecture } from '../../infra/settings.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MiB = 1024 * 1024;
/** Lambda allows 250 MB unzipped; the project promises far less. */
export const ASSET_LIMIT_BYTES = 60 * MiB;
export const ORT_BIN = 'node_modules/onnxruntime-node/bin/napi-v6';

export interface CliSynth {
  /** stdout and stderr of `cdk synth`, interleaved */
  output: string;
  /** the asset folder of each function, by Powertools service name (`maas-predict`, …) */
  assets: Record<string, string>;
  dispose(): void;
}

interface TemplateFunction {
  Type: string;
  Metadata?: { 'aws:asset:path'?: string };
  Properties: { Environment?: { Variables?: Record<string, unknown> } };
}

/**
 * Runs `npx cdk synth` exactly as a user would (the CLI, cdk.json, real bundling), into a
 * temporary cloud assembly that `dispose` removes.
 */
export const synthWithCli = async (architecture: Architecture): Promise<CliSynth> => {
  const outdir = mkdtempSync(join(tmpdir(), `maas-cdk-${architecture}-`));
  const dispose = () => rmSync(outdir, { recursive: true, force: true });
  try {
    const { stdout, stderr } = await promisify(execFile)(
      'npx',
      ['cdk', 'synth', '--quiet', '--output', outdir, '-c', `maas:architecture=${architecture}`],
      {
        cwd: ROOT,
        maxBuffer: 16 * MiB,
        env: {
          ...process.env,
          CDK_DISABLE_VERSION_CHECK: '1',
          npm_config_audit: 'false',
          npm_config_fund: 'false',
          npm_config_update_notifier: 'false',
        },
      },
    );
    const template = JSON.parse(readFileSync(join(outdir, 'OnnxMaas.template.json'), 'utf8')) as {
      Resources: Record<string, TemplateFunction>;
    };
    const assets: Record<string, string> = {};
    for (const resource of Object.values(template.Resources)) {
      const path = resource.Metadata?.['aws:asset:path'];
      const service = resource.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME;
      if (resource.Type === 'AWS::Lambda::Function' && path && typeof service === 'string') {
        assets[service] = join(outdir, path);
      }
    }
    return { output: `${stdout}\n${stderr}`, assets, dispose };
  } catch (err) {
    dispose();
    throw err;
  }
};

/** Bytes on disk of a folder, unzipped, not following links. */
export const folderBytes = (path: string): number => {
  const stat = lstatSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, entry) => sum + folderBytes(join(path, entry)), 0);
};

/** The `<platform>/<arch>` folders of onnxruntime-node binaries an asset ships. */
export const ortPlatforms = (asset: string): string[] => {
  const bin = join(asset, ORT_BIN);
  if (!existsSync(bin)) return [];
  return readdirSync(bin).flatMap((platform) =>
    readdirSync(join(bin, platform)).map((arch) => `${platform}/${arch}`),
  );
};
