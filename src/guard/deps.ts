import type { Registry } from '../registry/index.ts';
import type { MetricsReader } from './health.ts';
import type { Notifier } from './rollback.ts';
import type { GuardSettings } from './settings.ts';

/** What the rollback and promote functions work with. */
export interface GuardDeps {
  registry: Registry;
  /** the exact per-period figures the rules are confirmed against */
  metrics: MetricsReader;
  settings: GuardSettings;
  notifier?: Notifier;
  clock?: () => Date;
}
