import type * as ort from 'onnxruntime-node';
import type { TensorSpec } from '../onnx/index.ts';
import type { InputLimits, ServedVariant } from '../registry/types.ts';

/** A live session and what the cache needs to know about it. */
export interface SessionEntry {
  readonly key: string;
  readonly model: string;
  readonly version: number;
  readonly served: ServedVariant;
  /** what the entry weighs against the cache bound: the size of the model bytes */
  readonly bytes: number;
  readonly session: ort.InferenceSession;
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  /** the manifest's bound on one request, when it has one */
  readonly inputLimits?: InputLimits;
  /** runs in progress: an evicted session is released only when this reaches zero */
  inFlight: number;
  evicted: boolean;
  released: boolean;
}

/**
 * Live sessions, least recently used first, bounded by the bytes of their models. The entry just
 * added is never evicted by its own insertion, so a model larger than the whole bound still serves.
 */
export class SessionCache {
  private readonly entries = new Map<string, SessionEntry>();
  private total = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly onEvict: (entry: SessionEntry) => void,
  ) {}

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.entries.size;
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** the entry, now the most recently used */
  get(key: string): SessionEntry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  add(entry: SessionEntry): void {
    const existing = this.entries.get(entry.key);
    if (existing !== undefined) this.evict(existing);
    this.entries.set(entry.key, entry);
    this.total += entry.bytes;
    for (const oldest of this.entries.values()) {
      if (this.total <= this.maxBytes || oldest === entry) break;
      this.evict(oldest);
    }
  }

  clear(): void {
    for (const entry of [...this.entries.values()]) this.evict(entry);
  }

  private evict(entry: SessionEntry): void {
    this.entries.delete(entry.key);
    this.total -= entry.bytes;
    entry.evicted = true;
    this.onEvict(entry);
  }
}
