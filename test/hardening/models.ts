import { readSignature } from '../../src/onnx/index.ts';
import type { Aliases, Manifest, Registry } from '../../src/registry/index.ts';

/** Commits `bytes` as the next version of `name` (fp32 served), the way ingest does, and returns it. */
export async function registerVersion(
  registry: Registry,
  name: string,
  bytes: Uint8Array,
): Promise<Manifest> {
  const { version } = await registry.reserveVersion(name);
  const fp32 = await registry.putVariant(name, version, 'fp32', bytes);
  const signature = readSignature(bytes);
  const manifest: Manifest = {
    model: name,
    version,
    served: 'fp32',
    variants: { fp32 },
    source: { key: `incoming/${name}/v${version}.onnx`, etag: 'hardening' },
    irVersion: signature.irVersion,
    opsetImports: signature.opsetImports,
    producer: signature.producer,
    inputs: signature.inputs,
    outputs: signature.outputs,
    createdAt: new Date().toISOString(),
  };
  await registry.commitManifest(manifest);
  return manifest;
}

/** Replaces production and candidate, keeping the guard's lists. */
export async function setAliases(
  registry: Registry,
  name: string,
  aliases: Pick<Aliases, 'production' | 'candidate'>,
): Promise<Aliases | undefined> {
  const update = await registry.updateAliases(name, (current) => ({
    model: name,
    knownGood: current?.knownGood ?? [],
    rolledBack: current?.rolledBack ?? [],
    updatedAt: new Date().toISOString(),
    ...aliases,
  }));
  return update.aliases;
}

/** A V2 JSON request for `tinyModel` (x: FP32 [batch, 4]). */
export const tinyRequestBody = (rows = 1): string =>
  JSON.stringify({
    inputs: [
      {
        name: 'x',
        datatype: 'FP32',
        shape: [rows, 4],
        data: Array.from({ length: rows * 4 }, (_, i) => i),
      },
    ],
  });
