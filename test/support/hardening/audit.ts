import { errorMessage } from '../../../src/errors/index.ts';
import { keys, ModelNotFoundError, type Registry } from '../../../src/registry/index.ts';

export interface RegistryAudit {
  models: number;
  /** committed versions (with a manifest) */
  versions: number;
  /** version folders without a manifest: reserved by an ingest that has not committed (yet) */
  uncommitted: number;
  historyRecords: number;
  /** everything that breaks the storage contract; empty when the registry is sound */
  problems: string[];
}

/**
 * Reads the whole registry the way its readers do and lists what is lost or corrupted: a manifest
 * that does not parse or does not name itself, a variant whose bytes do not hash to the manifest,
 * `aliases.json` naming a version with no manifest (production, candidate or known-good), a
 * history record that does not parse. Run it with a store no fault is injected into.
 */
export async function auditRegistry(registry: Registry): Promise<RegistryAudit> {
  const audit: RegistryAudit = {
    models: 0,
    versions: 0,
    uncommitted: 0,
    historyRecords: 0,
    problems: [],
  };
  const problem = (text: string) => audit.problems.push(text);
  for (const model of await registry.listModels()) {
    audit.models += 1;
    const committed: number[] = await registry.listVersions(model).catch((err: unknown) => {
      if (err instanceof ModelNotFoundError) return [];
      throw err;
    });
    const { prefixes } = await registry.store.list(keys.modelPrefix(model), { delimiter: '/' });
    const folders = prefixes.filter((p) => /\/[1-9]\d*\/$/.test(p)).length;
    audit.uncommitted += folders - committed.length;
    for (const version of committed) {
      audit.versions += 1;
      try {
        const manifest = await registry.getManifest(model, version);
        if (manifest.model !== model || manifest.version !== version) {
          problem(`${model}@${version}: the manifest names ${manifest.model}@${manifest.version}`);
        }
        for (const variant of ['fp32', 'int8'] as const) {
          if (manifest.variants[variant] === undefined) continue;
          await registry.readVariant(model, version, variant, { manifest });
        }
        if (manifest.variants[manifest.served] === undefined) {
          problem(`${model}@${version}: serves ${manifest.served}, which it does not list`);
        }
      } catch (err) {
        problem(`${model}@${version}: ${errorMessage(err)}`);
      }
    }
    try {
      const aliases = (await registry.getAliases(model))?.aliases;
      const named: [string, number | undefined][] = [
        ['production', aliases?.production],
        ['candidate', aliases?.candidate?.version],
        ...(aliases?.knownGood ?? []).map((v): [string, number] => ['knownGood', v]),
      ];
      for (const [role, version] of named) {
        if (version !== undefined && !committed.includes(version)) {
          problem(`${model}: aliases.json names ${role} ${version}, which has no manifest`);
        }
      }
    } catch (err) {
      problem(`${model}: aliases.json: ${errorMessage(err)}`);
    }
    try {
      audit.historyRecords += (await registry.history(model)).length;
    } catch (err) {
      problem(`${model}: history: ${errorMessage(err)}`);
    }
  }
  return audit;
}
