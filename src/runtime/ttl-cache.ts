import { StorageUnavailableError } from '../storage/index.ts';

interface Slot<V> {
  value?: V;
  checkedAt: number;
  pending?: Promise<V | undefined>;
}

/**
 * Values re-read after a TTL, one read at a time per key. When the store is unreachable the last
 * known value keeps serving (and is trusted for another TTL), so a warm instance rides out an S3
 * outage on what it already knows. `undefined` results are not kept: names that do not exist are
 * chosen by clients and must not grow the cache.
 */
export class TtlCache<V> {
  private readonly slots = new Map<string, Slot<V>>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /**
   * `read` receives the last known value (for a conditional GET) and returns the current one;
   * `fresh` reads even within the TTL (joining a read already under way).
   */
  async get(
    key: string,
    read: (previous: V | undefined) => Promise<V | undefined>,
    { fresh = false }: { fresh?: boolean } = {},
  ): Promise<V | undefined> {
    const slot = this.slots.get(key);
    if (!fresh && slot?.value !== undefined && this.now() - slot.checkedAt < this.ttlMs) {
      return slot.value;
    }
    if (slot?.pending !== undefined) return slot.pending;
    const previous = slot?.value;
    const pending = read(previous).then(
      (value) => {
        if (value === undefined) this.slots.delete(key);
        else this.slots.set(key, { value, checkedAt: this.now() });
        return value;
      },
      (err: unknown) => {
        if (previous !== undefined && err instanceof StorageUnavailableError) {
          this.slots.set(key, { value: previous, checkedAt: this.now() });
          return previous;
        }
        if (slot?.value === undefined) this.slots.delete(key);
        else this.slots.set(key, { value: slot.value, checkedAt: slot.checkedAt });
        throw err;
      },
    );
    this.slots.set(key, { ...slot, checkedAt: slot?.checkedAt ?? 0, pending });
    return pending;
  }

  /** forget a key, so the next `get` reads it again */
  delete(key: string): void {
    this.slots.delete(key);
  }
}
