import { readSignature } from '../../src/onnx/index.ts';
import type { Aliases, Manifest, Registry } from '../../src/registry/index.ts';

/**
 * Commits `bytes` as the next version of `model`, fp32 served, the way ingest does (variant, then
 * manifest) but without ingest's checks, and returns its manifest. `extra` adds what ingest would
 * have recorded (sample means, a warm-up).
 */
export async function registerVersion(
  registry: Registry,
  model: string,
  bytes: Uint8Array,
  extra: Pick<Partial<Manifest>, 'sampleMeans' | 'warmup'> = {},
): Promise<Manifest> {
  const signature = readSignature(bytes);
  const { version } = await registry.reserveVersion(model);
  const fp32 = await registry.putVariant(model, version, 'fp32', bytes);
  const manifest: Manifest = {
    model,
    version,
    served: 'fp32',
    variants: { fp32 },
    source: { key: `incoming/${model}/v${version}.onnx`, etag: `etag-${version}` },
    irVersion: signature.irVersion,
    opsetImports: signature.opsetImports,
    producer: signature.producer,
    inputs: signature.inputs,
    outputs: signature.outputs,
    ...extra,
    createdAt: new Date().toISOString(),
  };
  await registry.commitManifest(manifest);
  return manifest;
}

/** Replaces production and candidate, keeping the guard's lists (known-good, rolled back). */
export async function setAliases(
  registry: Registry,
  model: string,
  aliases: Pick<Aliases, 'production' | 'candidate'>,
): Promise<Aliases | undefined> {
  const update = await registry.updateAliases(model, (current) => ({
    model,
    knownGood: current?.knownGood ?? [],
    rolledBack: current?.rolledBack ?? [],
    updatedAt: new Date().toISOString(),
    ...aliases,
  }));
  return update.aliases;
}
