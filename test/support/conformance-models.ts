import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import {
  DATATYPES,
  type Datatype,
  datatypeToElemType,
  encodeModel,
  graph,
  model,
  node,
  readSignature,
  TensorProto_DataType as T,
  type TensorSpec,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import type { Manifest } from '../../src/registry/index.ts';
import { ModelNotFoundError, VersionNotFoundError } from '../../src/registry/index.ts';
import type {
  LoadedModel,
  ModelDescription,
  ModelListing,
  ModelProvider,
} from '../../src/runtime/index.ts';
import { THIRD_PARTY_MODELS } from './models.ts';

export const tensorName = (prefix: string, datatype: Datatype): string =>
  `${prefix}_${datatype.toLowerCase()}`;

/**
 * One Identity per V2 datatype: inputs `x_<type>` of shape [batch, 3] (a named dynamic dim for
 * half of them, an unnamed one for the rest), outputs `y_<type>`. With every datatype, thirteen
 * inputs and outputs go through one session.
 */
export const identityModel = (datatypes: readonly Datatype[] = DATATYPES): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'identity',
        nodes: datatypes.map((d) => node('Identity', [tensorName('x', d)], [tensorName('y', d)])),
        inputs: datatypes.map((d, i) =>
          valueInfo(tensorName('x', d), datatypeToElemType(d), [i % 2 ? null : 'batch', 3]),
        ),
        outputs: datatypes.map((d, i) =>
          valueInfo(tensorName('y', d), datatypeToElemType(d), [i % 2 ? null : 'batch', 3]),
        ),
      }),
      opset: 17,
      producer: 'protocol-conformance',
    }),
  );

/**
 * Computation rather than copies: `sum = a * b + c` over FP32 [n, m] (both dims dynamic),
 * `rounded = Cast<INT32>(sum)`, `scaled = Cast<FP64>(sum) * scale` with a rank-0 FP64 `scale`,
 * `positive = sum > 0` (BOOL).
 */
export const arithmeticModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'arithmetic',
        nodes: [
          node('Mul', ['a', 'b'], ['ab']),
          node('Add', ['ab', 'c'], ['sum']),
          node('Cast', ['sum'], ['rounded'], { to: T.INT32 }),
          node('Cast', ['sum'], ['sum64'], { to: T.DOUBLE }),
          node('Mul', ['sum64', 'scale'], ['scaled']),
          node('Constant', [], ['zero'], { value_float: { f: 0 } }),
          node('Greater', ['sum', 'zero'], ['positive']),
        ],
        inputs: [
          valueInfo('a', T.FLOAT, ['n', 'm']),
          valueInfo('b', T.FLOAT, ['n', 'm']),
          valueInfo('c', T.FLOAT, [null, null]),
          valueInfo('scale', T.DOUBLE, []),
        ],
        outputs: [
          valueInfo('sum', T.FLOAT, ['n', 'm']),
          valueInfo('rounded', T.INT32, ['n', 'm']),
          valueInfo('scaled', T.DOUBLE, ['n', 'm']),
          valueInfo('positive', T.BOOL, ['n', 'm']),
        ],
      }),
      opset: 17,
      producer: 'protocol-conformance',
    }),
  );

/** A single-input model for V1 `:predict`: `y = x * 2` and `norm = ReduceSum(x)` per row. */
export const singleInputModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'single_input',
        nodes: [
          node('Constant', [], ['two'], { value_float: { f: 2 } }),
          node('Mul', ['x', 'two'], ['y']),
          node('ReduceSum', ['x', 'axes'], ['total'], { keepdims: 0 }),
        ],
        initializers: [tensor('axes', T.INT64, [1], [1])],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
        outputs: [valueInfo('y', T.FLOAT, ['batch', 4]), valueInfo('total', T.FLOAT, ['batch'])],
      }),
      opset: 17,
      producer: 'protocol-conformance',
    }),
  );

/**
 * `rows = Gather(table, ids)` over a 3-row table: any INT64 ids pass the signature, but onnxruntime
 * refuses ids past the table at run time, the way an embedding refuses tokens past its vocabulary.
 */
export const gatherModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'gather',
        nodes: [node('Gather', ['table', 'ids'], ['rows'], { axis: 0 })],
        inputs: [valueInfo('ids', T.INT64, ['n'])],
        outputs: [valueInfo('rows', T.FLOAT, ['n', 2])],
        initializers: [tensor('table', T.FLOAT, [3, 2], [1, 2, 3, 4, 5, 6])],
      }),
      opset: 17,
      producer: 'protocol-conformance',
    }),
  );

export const sileroLegacyPath = (): string => thirdParty('silero_vad_legacy');
export const sileroV5Path = (): string => thirdParty('silero_vad_v5');

const thirdParty = (name: string): string => {
  const found = THIRD_PARTY_MODELS.find((m) => m.name === name);
  if (!found) throw new Error(`no third-party model ${name}`);
  return found.path;
};

interface Served {
  name: string;
  session: ort.InferenceSession;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  manifest: Manifest;
}

const manifestOf = (name: string, bytes: Uint8Array): Manifest => {
  const signature = readSignature(bytes);
  return {
    model: name,
    version: 1,
    served: 'fp32',
    variants: {
      fp32: { key: `registry/${name}/1/model.onnx`, sha256: '', bytes: bytes.byteLength },
    },
    source: { key: `incoming/${name}/model.onnx`, etag: 'test' },
    irVersion: signature.irVersion,
    opsetImports: signature.opsetImports,
    producer: signature.producer,
    inputs: signature.inputs,
    outputs: signature.outputs,
    createdAt: new Date(0).toISOString(),
  };
};

/**
 * A `ModelProvider` over real onnxruntime sessions of in-memory models, each served as version 1
 * in production: the protocol tests run real inference without the registry and S3.
 */
export class SessionProvider implements ModelProvider {
  private constructor(private readonly served: ReadonlyMap<string, Served>) {}

  static async create(models: Record<string, Uint8Array | string>): Promise<SessionProvider> {
    const served = new Map<string, Served>();
    for (const [name, source] of Object.entries(models)) {
      const bytes = typeof source === 'string' ? new Uint8Array(await readFile(source)) : source;
      const session = await ort.InferenceSession.create(bytes);
      const manifest = manifestOf(name, bytes);
      served.set(name, {
        name,
        session,
        inputs: manifest.inputs,
        outputs: manifest.outputs,
        manifest,
      });
    }
    return new SessionProvider(served);
  }

  session(name: string): ort.InferenceSession {
    return this.find(name).session;
  }

  async release(): Promise<void> {
    for (const s of this.served.values()) await s.session.release();
  }

  async listModels(): Promise<ModelListing[]> {
    return [...this.served.keys()].map((name) => ({ name, production: 1 }));
  }

  async describe(name: string, version?: number): Promise<ModelDescription> {
    const s = this.find(name, version);
    return { name, versions: [1], version: 1, manifest: s.manifest };
  }

  async acquire(name: string, version?: number): Promise<LoadedModel> {
    const s = this.find(name, version);
    return {
      model: name,
      version: 1,
      variant: version === undefined ? 'production' : 'pinned',
      served: 'fp32',
      inputs: s.inputs,
      outputs: s.outputs,
      run: (feeds, outputNames) => s.session.run(feeds, outputNames),
    };
  }

  private find(name: string, version?: number): Served {
    const s = this.served.get(name);
    if (!s) throw new ModelNotFoundError(name);
    if (version !== undefined && version !== 1) throw new VersionNotFoundError(name, version);
    return s;
  }
}
