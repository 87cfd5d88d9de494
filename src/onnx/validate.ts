import { fromBinary, ScalarType } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import {
  type GraphProto,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  type SparseTensorProto,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProto_DataType,
  type TensorShapeProto,
} from 'onnx-buf';
import { fmtBytes } from '../util/index.ts';
import { elemTypeByteSize, elemTypeName } from './datatypes.ts';
import { ModelRejectedError } from './errors.ts';
import { checkNames } from './names.ts';
import { opKey, readSignature } from './signature.ts';
import type { ModelSignature } from './types.ts';
import { subgraphsOf } from './walk.ts';

export interface ValidationLimits {
  /** size of the .onnx file */
  maxBytes: number;
  /** nodes across the main graph, subgraphs and function bodies */
  maxNodes: number;
  /** If/Loop/Scan bodies inside bodies; the main graph is depth 0 */
  maxNestingDepth: number;
  /** any one fixed dim of a tensor or a graph value */
  maxDim: number;
  /** product of a tensor's (or a graph value's fixed) dims */
  maxElements: number;
}

export const DEFAULT_VALIDATION_LIMITS: Readonly<ValidationLimits> = Object.freeze({
  maxBytes: 1024 ** 3,
  maxNodes: 100_000,
  maxNestingDepth: 8,
  maxDim: 2 ** 31,
  maxElements: 2 ** 32,
});

/** Node domains a model may use. `''` is ai.onnx. */
export const ALLOWED_DOMAINS: readonly string[] = ['', 'ai.onnx', 'ai.onnx.ml'];

/**
 * The only com.microsoft contrib ops accepted: those our own int8 quantizer emits, so quantized
 * variants re-validate. Any other contrib op ties a model to one runtime build.
 */
export const ALLOWED_MICROSOFT_OPS: readonly string[] = [
  'DynamicQuantizeMatMul',
  'MatMulIntegerToFloat',
  // static int8 below opset 13: per-channel QDQ in the com.microsoft domain (src/quantize/static.ts)
  'QuantizeLinear',
  'DequantizeLinear',
];

/**
 * Domains whose operators onnxruntime (or ONNX) implements itself, now or in a later release.
 * onnxruntime resolves a node to its own kernel before it looks at the model's functions, so a
 * model-local function in one of these domains is not what runs: `com.microsoft::Gelu` defined
 * as an identity passed the allow-list as "a function of the model" and then ran the contrib
 * kernel. Prefixes, so that every `com.microsoft.*` and `ai.onnx.*` domain counts.
 */
export const RUNTIME_DOMAIN_PREFIXES: readonly string[] = ['ai.onnx', 'com.microsoft', 'com.ms.'];

const isRuntimeDomain = (domain: string): boolean =>
  domain === '' || RUNTIME_DOMAIN_PREFIXES.some((prefix) => domain.startsWith(prefix));

/**
 * Names the way onnxruntime compares them: byte for byte. The protobuf decoder turns invalid
 * UTF-8 into U+FFFD, so two different byte strings can read the same here and differently there;
 * a name outside this set could resolve one way in our check and another in the runtime's.
 */
const PLAIN_NAME = /^[A-Za-z0-9_.-]*$/;

const SAVE_EMBEDDED =
  'Save the model with every tensor embedded in the .onnx file ' +
  '(Python: onnx.save(model, path, save_as_external_data=False); files up to 2 GB).';

const reject = (
  code: ConstructorParameters<typeof ModelRejectedError>[0],
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never => {
  // messages often open with a location ("initializer 'w' of graph …"): make them sentences
  const sentence = message.charAt(0).toUpperCase() + message.slice(1);
  throw new ModelRejectedError(code, sentence, { details, cause });
};

const expectedWireType = new Map<number, WireType>(
  ModelProtoSchema.fields.map((f) => [
    f.number,
    f.fieldKind === 'scalar' && f.scalar !== ScalarType.STRING && f.scalar !== ScalarType.BYTES
      ? WireType.Varint
      : WireType.LengthDelimited,
  ]),
);

/**
 * Reads only the top-level fields, to tell a cut-off ONNX file (known ModelProto fields, the last
 * one running past the end) from bytes that are not ONNX at all (an unknown field or wire type).
 */
const diagnoseUndecodable = (bytes: Uint8Array, cause: unknown): never => {
  const reader = new BinaryReader(bytes);
  let fields = 0;
  try {
    while (reader.pos < reader.len) {
      const [fieldNo, wireType] = reader.tag();
      if (expectedWireType.get(fieldNo) !== wireType) break;
      fields++;
      reader.skip(wireType);
    }
  } catch {
    if (fields > 0) {
      reject(
        'Truncated',
        `The file ends in the middle of the model (${fmtBytes(bytes.length)} received): the upload ` +
          'was cut off. Upload the complete .onnx file again.',
        { bytes: bytes.length },
        cause,
      );
    }
  }
  return reject(
    'NotOnnx',
    // The decoder's own words ("cant skip wire type 4") name its internals, not the file: the
    // reason says what the bytes are, and the cause keeps the detail for the logs.
    `The file is not an ONNX model: its ${fmtBytes(bytes.length)} do not decode as an ONNX ` +
      `ModelProto${describeStart(bytes)}. Send a .onnx file as written by your framework's ONNX ` +
      'exporter (torch.onnx.export, tf2onnx, skl2onnx, ...).',
    { bytes: bytes.length },
    cause,
  );
};

/** What the file starts with, when it is recognisably something else than ONNX. */
const describeStart = (bytes: Uint8Array): string => {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 8));
  if (head.startsWith('PK')) return ' (it is a zip archive: unzip it and send the .onnx inside)';
  if (head.startsWith('\x1f\x8b')) return ' (it is gzip-compressed: decompress it first)';
  if (/^\s*[[{]/.test(head)) return ' (it is JSON text)';
  if (head.startsWith('\x93NUMPY')) return ' (it is a NumPy array file)';
  const printable = [...head].every(
    (c) => c === '\t' || c === '\n' || c === '\r' || (c >= ' ' && c <= '~'),
  );
  if (head.length > 0 && printable) return ' (it is plain text)';
  return '';
};

const decode = (bytes: Uint8Array): ModelProto => {
  let m: ModelProto;
  try {
    m = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
  } catch (cause) {
    // the decoder's own bound on message nesting (100 levels, about 30 nested subgraphs) trips
    // long before the JS stack would
    if (cause instanceof Error && cause.message.includes('maximum recursion depth')) {
      reject(
        'NestingTooDeep',
        'The model nests messages (subgraphs inside subgraphs) too deeply to decode safely. Send ' +
          'a model with flatter control flow.',
        {},
        cause,
      );
    }
    return diagnoseUndecodable(bytes, cause);
  }
  // protobuf keeps unknown fields instead of failing: graphless bytes made of unknown fields (or
  // of nothing ONNX) are not a model that lost its graph, they were never ONNX
  if (!m.graph && ((m.$unknown?.length ?? 0) > 0 || m.opsetImport.length === 0)) {
    return diagnoseUndecodable(bytes, new Error('no ONNX model fields found'));
  }
  return m;
};

/** Bits per element of the packed sub-byte types. */
const SUB_BYTE_BITS: Partial<Record<number, number>> = {
  [TensorProto_DataType.INT4]: 4,
  [TensorProto_DataType.UINT4]: 4,
  [TensorProto_DataType.FLOAT4E2M1]: 4,
  [TensorProto_DataType.INT2]: 2,
  [TensorProto_DataType.UINT2]: 2,
};

/** Length of the typed repeated field that holds this type's values when raw_data is empty. */
const typedFieldLength = (t: TensorProto): number => {
  const D = TensorProto_DataType;
  switch (t.dataType) {
    case D.FLOAT:
    case D.COMPLEX64:
      return t.floatData.length;
    case D.DOUBLE:
    case D.COMPLEX128:
      return t.doubleData.length;
    case D.INT64:
      return t.int64Data.length;
    case D.UINT32:
    case D.UINT64:
      return t.uint64Data.length;
    case D.STRING:
      return t.stringData.length;
    default:
      return t.int32Data.length;
  }
};

/** a function's identity as onnxruntime looks it up: domain, name and overload */
const functionKey = (domain: string, name: string, overload: string): string =>
  `${domain}::${name}::${overload}`;

class Validator {
  private nodes = 0;
  private readonly functions = new Set<string>();

  constructor(
    private readonly limits: ValidationLimits,
    model: ModelProto,
  ) {
    for (const f of model.functions) {
      const at = `function '${f.domain}::${f.name}'`;
      if (!PLAIN_NAME.test(f.domain) || !PLAIN_NAME.test(f.name) || !PLAIN_NAME.test(f.overload)) {
        reject(
          'ShadowedOp',
          `The model defines a function whose domain, name or overload holds characters other than ` +
            'letters, digits, _, . and -; the runtime could resolve it differently than this check. ' +
            'Export the model with plain function names.',
          { domain: f.domain, name: f.name },
        );
      }
      if (isRuntimeDomain(f.domain)) {
        reject(
          'ShadowedOp',
          `${at} is defined in the operator domain '${f.domain || 'ai.onnx'}', which onnxruntime ` +
            'implements itself: it would run its own kernel, not the function. Export the model ' +
            "with its local functions in a domain of your own (e.g. 'local.functions').",
          { domain: f.domain, name: f.name },
        );
      }
      const key = functionKey(f.domain, f.name, f.overload);
      if (this.functions.has(key)) {
        reject(
          'ShadowedOp',
          `${at} is defined more than once; which definition runs would be the runtime's choice. ` +
            'Export the model with one definition per domain, name and overload.',
          { domain: f.domain, name: f.name },
        );
      }
      this.functions.add(key);
    }
  }

  checkDims(dims: readonly number[], where: string): void {
    let product = 1;
    for (const d of dims) {
      if (d < 0 || d > this.limits.maxDim) {
        reject(
          'DimTooLarge',
          `${where} declares a dimension of ${d}; dimensions must be between 0 and ${this.limits.maxDim}. ` +
            'Send a model whose tensor shapes are within that bound (use a symbolic dim for sizes known only at run time).',
          { where, dim: d, maxDim: this.limits.maxDim },
        );
      }
      product *= d;
    }
    if (!Number.isSafeInteger(product)) {
      reject(
        'DimOverflow',
        `${where} declares dims [${dims.join(', ')}] whose element count overflows 2^53; no real ` +
          'tensor is that large. Fix the shape in the exporter.',
        { where, dims },
      );
    }
    if (product > this.limits.maxElements) {
      reject(
        'TooManyElements',
        `${where} declares ${product} elements, over the cap of ${this.limits.maxElements}. ` +
          'Send a model with smaller tensors.',
        { where, elements: product, maxElements: this.limits.maxElements },
      );
    }
  }

  checkShape(shape: TensorShapeProto | undefined, where: string): void {
    // some exporters write a dynamic dim as dim_value -1; runtimes read it as unknown, so do we
    const fixed = (shape?.dim ?? []).flatMap((d) =>
      d.value.case === 'dimValue' && d.value.value >= 0n ? [Number(d.value.value)] : [],
    );
    this.checkDims(fixed, where);
  }

  checkTensor(t: TensorProto, where: string): void {
    const external = t.externalData.find((e) => e.key === 'location')?.value;
    if (t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0) {
      reject(
        'ExternalData',
        `${where} keeps its data outside the model file${
          external === undefined ? '' : ` (location '${external}')`
        }; models are loaded only from the verified bytes of the upload. ${SAVE_EMBEDDED}`,
        { where, location: external ?? null },
      );
    }
    const dims = t.dims.map(Number);
    this.checkDims(dims, where);
    const n = dims.reduce((a, b) => a * b, 1);
    const type = elemTypeName(t.dataType);
    const mismatch = (found: string): never =>
      reject(
        'TensorDataMismatch',
        `${where} declares ${type} dims [${dims.join(', ')}] (${n} elements) but ${found}. ` +
          'The file is corrupt or was edited by hand: export the model again.',
        { where, dims, dataType: type },
      );
    if (t.dataType === TensorProto_DataType.UNDEFINED || !(t.dataType in TensorProto_DataType)) {
      mismatch(`has an unknown element type (${t.dataType})`);
    }
    const raw = t.rawData.length;
    if (raw > 0) {
      const size = elemTypeByteSize(t.dataType);
      const bits = SUB_BYTE_BITS[t.dataType];
      const expected =
        size !== undefined ? n * size : bits !== undefined ? Math.ceil((n * bits) / 8) : undefined;
      if (expected === undefined) mismatch('stores strings in raw_data');
      if (raw !== expected) mismatch(`carries ${raw} bytes of data (${expected} expected)`);
      return;
    }
    const bits = SUB_BYTE_BITS[t.dataType];
    const complex =
      t.dataType === TensorProto_DataType.COMPLEX64 ||
      t.dataType === TensorProto_DataType.COMPLEX128;
    const expected = bits !== undefined ? Math.ceil((n * bits) / 8) : complex ? 2 * n : n;
    const found = typedFieldLength(t);
    if (found !== expected) mismatch(`carries ${found} values (${expected} expected)`);
  }

  checkSparse(s: SparseTensorProto, where: string): void {
    this.checkDims(s.dims.map(Number), where);
    if (s.values) this.checkTensor(s.values, `the values tensor of ${where}`);
    if (s.indices) this.checkTensor(s.indices, `the indices tensor of ${where}`);
  }

  checkNode(n: NodeProto, where: string): void {
    this.nodes++;
    if (this.nodes > this.limits.maxNodes) {
      reject(
        'TooManyNodes',
        `The model has more than ${this.limits.maxNodes} nodes. Send a smaller model, or one ` +
          'simplified with onnxsim / onnxruntime graph optimisations.',
        { maxNodes: this.limits.maxNodes },
      );
    }
    const label = `node '${n.name || n.output[0] || '?'}' (${opKey(n)}) in ${where}`;
    if (!PLAIN_NAME.test(n.domain) || !PLAIN_NAME.test(n.opType) || !PLAIN_NAME.test(n.overload)) {
      reject(
        'ShadowedOp',
        `${label} names its operator with characters other than letters, digits, _, . and -; ` +
          'the runtime could resolve it differently than this check. Export it with a plain name.',
        { node: n.name, opType: n.opType, domain: n.domain },
      );
    }
    const allowed =
      (ALLOWED_DOMAINS.includes(n.domain) && n.overload === '') ||
      (n.domain === 'com.microsoft' &&
        ALLOWED_MICROSOFT_OPS.includes(n.opType) &&
        n.overload === '') ||
      this.functions.has(functionKey(n.domain, n.opType, n.overload));
    if (!allowed) {
      reject(
        'DisallowedOp',
        `${label} uses the operator domain '${n.domain}', which this service does not run. ` +
          `Allowed: ai.onnx, ai.onnx.ml, and from com.microsoft only ${ALLOWED_MICROSOFT_OPS.join(', ')}. ` +
          'Export the model with standard ONNX operators.',
        { node: n.name, opType: n.opType, domain: n.domain },
      );
    }
    for (const a of n.attribute) {
      const at = `attribute '${a.name}' of ${label}`;
      if (a.t) this.checkTensor(a.t, `tensor ${at}`);
      a.tensors.forEach((t, i) => {
        this.checkTensor(t, `tensor #${i} of ${at}`);
      });
      if (a.sparseTensor) this.checkSparse(a.sparseTensor, `sparse tensor ${at}`);
      a.sparseTensors.forEach((s, i) => {
        this.checkSparse(s, `sparse tensor #${i} of ${at}`);
      });
    }
  }

  /** Checks `root` and its subgraphs iteratively, so extreme nesting cannot overflow the stack. */
  checkGraphTree(root: GraphProto, where: string): void {
    const stack = [{ g: root, depth: 0, where }];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const { g, depth } = top;
      if (depth > this.limits.maxNestingDepth) {
        reject(
          'NestingTooDeep',
          `Subgraphs (If/Loop/Scan bodies) are nested more than ${this.limits.maxNestingDepth} deep ` +
            `(at ${top.where}). Send a model with flatter control flow.`,
          { maxNestingDepth: this.limits.maxNestingDepth },
        );
      }
      const at = `graph '${g.name}'`;
      for (const t of g.initializer) this.checkTensor(t, `initializer '${t.name}' of ${at}`);
      for (const s of g.sparseInitializer) {
        this.checkSparse(s, `sparse initializer '${s.values?.name ?? '?'}' of ${at}`);
      }
      for (const vi of [...g.input, ...g.output, ...g.valueInfo]) {
        const type = vi.type?.value;
        if (type?.case === 'tensorType' || type?.case === 'sparseTensorType') {
          this.checkShape(type.value.shape, `value '${vi.name}' of ${at}`);
        }
      }
      for (const n of g.node) {
        this.checkNode(n, at);
        for (const sub of subgraphsOf(n)) {
          stack.push({ g: sub, depth: depth + 1, where: `graph '${sub.name}' inside ${at}` });
        }
      }
    }
  }

  checkModel(m: ModelProto, graph: GraphProto): void {
    this.checkGraphTree(graph, 'the main graph');
    for (const f of m.functions) {
      const at = `function '${f.domain}::${f.name}'`;
      for (const n of f.node) {
        this.checkNode(n, at);
        for (const sub of subgraphsOf(n)) this.checkGraphTree(sub, `a subgraph of ${at}`);
      }
      for (const a of f.attributeProto) {
        if (a.t) this.checkTensor(a.t, `default of attribute '${a.name}' of ${at}`);
      }
    }
    for (const ti of m.trainingInfo) {
      if (ti.initialization) this.checkGraphTree(ti.initialization, 'a training-info graph');
      if (ti.algorithm) this.checkGraphTree(ti.algorithm, 'a training-info graph');
    }
  }
}

/**
 * Names that must be unique, where onnxruntime and this code would otherwise read different
 * models from the same bytes (found by attack): of two initializers named `w0` onnxruntime ran
 * the first while the quantizer took the last, so the int8 variant served another model; of two
 * default-domain opset imports this code read the first and onnxruntime the last; two outputs of
 * one name answer twice under it.
 */
const checkUnique = (model: ModelProto, graph: GraphProto): void => {
  const once = (names: Iterable<string>, what: string, fix: string): void => {
    const seen = new Set<string>();
    for (const name of names) {
      if (seen.has(name)) {
        reject(
          'DuplicateName',
          `The model declares ${what} ${JSON.stringify(name.slice(0, 200))} more than once, and ` +
            `runtimes disagree on which one counts. ${fix}`,
          { what, name: name.slice(0, 200) },
        );
      }
      seen.add(name);
    }
  };
  once(
    model.opsetImport.map((o) => o.domain),
    'an opset import for domain',
    'Export it with one opset version per domain.',
  );
  once(
    [
      ...graph.initializer.map((t) => t.name),
      ...graph.sparseInitializer.map((s) => s.values?.name ?? ''),
    ],
    'the initializer',
    'Export it with unique initializer names (onnx.checker rejects the file too).',
  );
  once(
    graph.input.map((v) => v.name),
    'the graph input',
    'Export it with one name per input.',
  );
  once(
    graph.output.map((v) => v.name),
    'the graph output',
    'Export it with one name per output.',
  );
};

/**
 * Decides whether uploaded bytes may become a served model. Throws `ModelRejectedError` with a
 * distinct `code` per reason; returns the decoded model and its signature otherwise. The size cap
 * is checked before decoding, so an oversized upload costs no parse.
 */
export const validateModel = (
  bytes: Uint8Array,
  limits: Partial<ValidationLimits> = {},
): { model: ModelProto; signature: ModelSignature } => {
  const lim: ValidationLimits = { ...DEFAULT_VALIDATION_LIMITS, ...limits };
  if (bytes.length === 0) {
    reject('Empty', 'The file is empty. Upload the .onnx file itself (it was 0 bytes).');
  }
  if (bytes.length > lim.maxBytes) {
    reject(
      'TooLarge',
      `The model is ${fmtBytes(bytes.length)}, over the ${fmtBytes(lim.maxBytes)} limit. Send a ` +
        'smaller model (quantize or prune it before upload).',
      { bytes: bytes.length, maxBytes: lim.maxBytes },
    );
  }
  const model = decode(bytes);
  const graph = model.graph;
  if (!graph || graph.output.length === 0) {
    return reject(
      'NoGraph',
      graph
        ? 'The model graph declares no outputs, so it cannot answer a request. Export the model with its outputs.'
        : 'The model has no graph, so there is nothing to run. Send an .onnx file exported with its graph.',
    );
  }
  checkNames(model);
  checkUnique(model, graph);
  new Validator(lim, model).checkModel(model, graph);
  return { model, signature: readSignature(model) };
};
