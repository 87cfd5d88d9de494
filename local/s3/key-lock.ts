interface Waiter {
  exclusive: boolean;
  grant: () => void;
}

interface KeyState {
  readers: number;
  writer: boolean;
  queue: Waiter[];
}

/**
 * A first-come-first-served readers-writer lock per key. s3rver rewrites an object's files in
 * place, so a read overlapping a write would see half a body or a stale ETag; AWS S3 never shows
 * either. Writes to a key run alone (which also makes a precondition check and the write it guards
 * one step); reads of a key share.
 */
export class KeyLock {
  private readonly states = new Map<string, KeyState>();

  read<T>(key: string, work: () => Promise<T>): Promise<T> {
    return this.hold(key, false, work);
  }

  write<T>(key: string, work: () => Promise<T>): Promise<T> {
    return this.hold(key, true, work);
  }

  private async hold<T>(key: string, exclusive: boolean, work: () => Promise<T>): Promise<T> {
    await this.acquire(key, exclusive);
    try {
      return await work();
    } finally {
      this.release(key, exclusive);
    }
  }

  private acquire(key: string, exclusive: boolean): Promise<void> {
    let state = this.states.get(key);
    if (state === undefined) {
      state = { readers: 0, writer: false, queue: [] };
      this.states.set(key, state);
    }
    if (state.queue.length === 0 && canGrant(state, exclusive)) {
      take(state, exclusive);
      return Promise.resolve();
    }
    const waiting = state;
    return new Promise((resolve) => {
      waiting.queue.push({ exclusive, grant: resolve });
    });
  }

  private release(key: string, exclusive: boolean): void {
    const state = this.states.get(key);
    if (state === undefined) return;
    if (exclusive) state.writer = false;
    else state.readers -= 1;
    for (let next = state.queue[0]; next !== undefined; next = state.queue[0]) {
      if (!canGrant(state, next.exclusive)) break;
      state.queue.shift();
      take(state, next.exclusive);
      next.grant();
    }
    if (state.readers === 0 && !state.writer && state.queue.length === 0) this.states.delete(key);
  }
}

const canGrant = (state: KeyState, exclusive: boolean): boolean =>
  exclusive ? !state.writer && state.readers === 0 : !state.writer;

function take(state: KeyState, exclusive: boolean): void {
  if (exclusive) state.writer = true;
  else state.readers += 1;
}
