import type { Aliases, CandidateAlias, Registry } from '../../src/registry/index.ts';

/** Commits a version the way ingest does (variant, then manifest); the bytes are a stand-in. */
export async function commitVersion(registry: Registry, model: string): Promise<number> {
  const { version } = await registry.reserveVersion(model);
  const fp32 = await registry.putVariant(
    model,
    version,
    'fp32',
    new TextEncoder().encode(`${model} v${version}`),
  );
  await registry.commitManifest({
    model,
    version,
    served: 'fp32',
    variants: { fp32 },
    source: { key: `incoming/${model}/v${version}.onnx`, etag: `etag-${version}` },
    irVersion: 9,
    opsetImports: [{ domain: '', version: 17 }],
    producer: { name: 'guard-test', version: '1' },
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 4] }],
    createdAt: new Date().toISOString(),
  });
  return version;
}

/** Commits `count` versions of a model and writes its aliases as given. */
export async function modelWith(
  registry: Registry,
  model: string,
  count: number,
  aliases: Partial<Omit<Aliases, 'model' | 'updatedAt'>>,
): Promise<void> {
  for (let i = 0; i < count; i++) await commitVersion(registry, model);
  await registry.updateAliases(model, () => ({
    model,
    knownGood: [],
    rolledBack: [],
    updatedAt: new Date().toISOString(),
    ...aliases,
  }));
}

export const candidateOf = (version: number, bakeUntil: Date, weight = 0.1): CandidateAlias => ({
  version,
  weight,
  bakeUntil: bakeUntil.toISOString(),
});

/** The invariants every aliases.json must keep, whatever raced to write it. */
export function expectConsistent(aliases: Aliases): string[] {
  const problems: string[] = [];
  const { production, candidate, knownGood, rolledBack } = aliases;
  if (production !== undefined && rolledBack.includes(production)) {
    problems.push(`production ${production} is rolled back`);
  }
  if (candidate !== undefined && rolledBack.includes(candidate.version)) {
    problems.push(`candidate ${candidate.version} is rolled back`);
  }
  if (candidate !== undefined && candidate.version === production) {
    problems.push(`candidate ${candidate.version} is production`);
  }
  if (production !== undefined && knownGood.includes(production)) {
    problems.push(`production ${production} is listed as known-good`);
  }
  for (const v of knownGood)
    if (rolledBack.includes(v)) problems.push(`known-good ${v} is rolled back`);
  if (new Set(rolledBack).size !== rolledBack.length) problems.push('rolledBack repeats a version');
  return problems;
}
