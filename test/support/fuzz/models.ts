import {
  DATATYPES,
  encodeModel,
  graph,
  model,
  node,
  readSignature,
  TensorProto_DataType as T,
  type TensorSpec,
  valueInfo,
} from '../../../src/onnx/index.ts';
import {
  arithmeticModel,
  gatherModel,
  identityModel,
  SessionProvider,
  singleInputModel,
} from '../conformance-models.ts';

/** An input name clients must echo byte for byte: accents, a slash, a quote, a backslash, CJK, emoji. */
export const UNICODE_INPUT = 'é x/😀"\\ 输入';

/** `ÿ = Identity(UNICODE_INPUT)` over FP32 [2]: names a codec could mangle on the way in or out. */
const unicodeModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'unicode',
        nodes: [node('Identity', [UNICODE_INPUT], ['ÿ'])],
        inputs: [valueInfo(UNICODE_INPUT, T.FLOAT, [2])],
        outputs: [valueInfo('ÿ', T.FLOAT, [2])],
      }),
      opset: 17,
      producer: 'hardening-fuzz',
    }),
  );

/**
 * The models the fuzzers aim at, chosen to cover the codec: every datatype (identity; identity-json without FP16, which has no JSON form), dynamic and
 * rank-0 inputs with broadcasting onnxruntime can refuse (arithmetic), a single input for V1
 * (single), values refused at run time (gather: ids past its table), and a non-ASCII name.
 */
const MODEL_BYTES = {
  identity: identityModel(),
  // FP16 has no JSON form: JSON requests to `identity` are always refused, these can succeed
  'identity-json': identityModel(DATATYPES.filter((d) => d !== 'FP16')),
  arithmetic: arithmeticModel(),
  single: singleInputModel(),
  gather: gatherModel(),
  unicode: unicodeModel(),
} as const;

export type FuzzModelName = keyof typeof MODEL_BYTES;

export const FUZZ_MODELS: readonly FuzzModelName[] = Object.keys(MODEL_BYTES) as FuzzModelName[];

/** Each model's signature as the server sees it, read once for the generators. */
export const FUZZ_SIGNATURES: Readonly<
  Record<FuzzModelName, { inputs: TensorSpec[]; outputs: TensorSpec[] }>
> = Object.fromEntries(
  Object.entries(MODEL_BYTES).map(([name, bytes]) => {
    const { inputs, outputs } = readSignature(bytes);
    return [name, { inputs, outputs }];
  }),
) as Record<FuzzModelName, { inputs: TensorSpec[]; outputs: TensorSpec[] }>;

/** Real onnxruntime sessions of the fuzz models, each served as version 1 in production. */
export const createFuzzProvider = (): Promise<SessionProvider> =>
  SessionProvider.create({ ...MODEL_BYTES });
