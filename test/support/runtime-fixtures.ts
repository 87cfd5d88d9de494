import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import type {
  GetLargeOptions,
  GetOptions,
  ObjectStore,
  PutOptions,
  ReadIntoOptions,
  ReadIntoResult,
  StoredObject,
  StoredObjectHead,
} from '../../src/storage/index.ts';

// bench/predict.ts registers its models through this module

const FLOAT = TensorProto_DataType.FLOAT;

/**
 * `y = x + offset` on FP32 `[batch, 4]`: the offset tells which version answered. `padding` extra
 * float weights (an unused initializer) make the model heavier for cache-bound tests.
 */
export const addModel = (offset: number, padding = 0): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        nodes: [node('Add', ['x', 'offset'], ['y'])],
        inputs: [valueInfo('x', FLOAT, ['batch', 4])],
        outputs: [valueInfo('y', FLOAT, ['batch', 4])],
        initializers: [
          tensor('offset', FLOAT, [4], [offset, offset, offset, offset]),
          ...(padding > 0 ? [tensor('padding', FLOAT, [padding], new Float32Array(padding))] : []),
        ],
      }),
      opset: 17,
      producer: 'runtime-tests',
    }),
  );

/** one request's input and what the version with `offset` answers */
export const input = (): ort.Tensor =>
  new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [1, 4]);
export const expectedOutput = (offset: number): number[] => [1, 2, 3, 4].map((v) => v + offset);

export const outputOf = async (run: {
  run(feeds: Record<string, ort.Tensor>, names: string[]): Promise<Record<string, ort.Tensor>>;
}): Promise<number[]> => {
  const out = await run.run({ x: input() }, ['y']);
  return Array.from(out.y?.data as Float32Array);
};

export interface StoreCall {
  op: 'head' | 'get' | 'getLarge' | 'put' | 'list' | 'delete';
  key: string;
  conditional?: boolean;
  /** for a ranged GET: the first byte */
  rangeStart?: number;
  /** for a conditional GET: whether the store answered 304 */
  notModified?: boolean;
}

/** The real store, with a log of every call it served (to count S3 round trips). */
export class RecordingStore implements ObjectStore {
  readonly calls: StoreCall[] = [];

  constructor(private readonly inner: ObjectStore) {}

  get bucket(): string {
    return this.inner.bucket;
  }

  callsFor(key: string, op?: StoreCall['op']): StoreCall[] {
    return this.calls.filter((c) => c.key === key && (op === undefined || c.op === op));
  }

  head(key: string): Promise<StoredObjectHead> {
    this.calls.push({ op: 'head', key });
    return this.inner.head(key);
  }

  async get(key: string, options?: GetOptions): Promise<StoredObject | undefined> {
    const conditional = options?.ifNoneMatch !== undefined;
    const call: StoreCall = {
      op: 'get',
      key,
      conditional,
      ...(options?.range === undefined ? {} : { rangeStart: options.range.start }),
    };
    this.calls.push(call);
    const object = await this.inner.get(key, options);
    if (conditional) call.notModified = object === undefined;
    return object;
  }

  /** recorded as the GET it is */
  readInto(key: string, target: Uint8Array, options?: ReadIntoOptions): Promise<ReadIntoResult> {
    this.calls.push({
      op: 'get',
      key,
      conditional: false,
      ...(options?.range === undefined ? {} : { rangeStart: options.range.start }),
    });
    if (this.inner.readInto === undefined) throw new Error('the inner store has no readInto');
    return this.inner.readInto(key, target, options);
  }

  getLarge(key: string, options?: GetLargeOptions): Promise<StoredObject> {
    this.calls.push({ op: 'getLarge', key });
    if (this.inner.getLarge === undefined) throw new Error('the inner store has no getLarge');
    return this.inner.getLarge(key, options);
  }

  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<{ etag: string }> {
    this.calls.push({ op: 'put', key });
    return this.inner.put(key, body, options);
  }

  list(
    prefix: string,
    options?: { delimiter?: string },
  ): Promise<{ keys: StoredObjectHead[]; prefixes: string[] }> {
    this.calls.push({ op: 'list', key: prefix });
    return this.inner.list(prefix, options);
  }

  delete(key: string): Promise<void> {
    this.calls.push({ op: 'delete', key });
    return this.inner.delete(key);
  }
}

/** A temporary directory for a runtime's disk cache, removed by the returned function. */
export async function tempDir(
  prefix = 'maas-runtime-',
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
