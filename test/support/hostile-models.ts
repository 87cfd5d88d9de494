import { create } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import {
  FunctionProtoSchema,
  NodeProtoSchema,
  SparseTensorProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  TypeProto_SequenceSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
} from 'onnx-buf';
import { countingLoop } from '../../local/guard/demo-models.ts';
import {
  encodeModel,
  type GraphProto,
  graph,
  model,
  type NodeProto,
  node,
  type RejectionCode,
  TensorProto_DataType as T,
  type TensorProto,
  TensorProto_DataLocation,
  tensor,
  type ValidationLimits,
  valueInfo,
} from '../../src/onnx/index.ts';
import { mulberry32 } from '../../src/util/index.ts';

export interface HostileModel {
  name: string;
  bytes: Uint8Array;
  expectedCode: RejectionCode;
  /** a fragment the rejection message must contain, proving it names the problem */
  messageIncludes: string;
  /** validation limits the case is meant for (lowered caps), on top of the defaults */
  limits?: Partial<ValidationLimits>;
}

const io = {
  inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
  outputs: [valueInfo('y', T.FLOAT, ['batch', 4])],
};

/** y = x + w: valid apart from whatever a case changes. */
const addModel = (
  w: TensorProto,
  extra: { nodes?: NodeProto[]; sparse?: boolean; opsetDomains?: string[] } = {},
): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        ...io,
        nodes: [node('Add', ['x', 'w'], ['y']), ...(extra.nodes ?? [])],
        initializers: [w],
      }),
      opset: [
        { domain: '', version: 17 },
        ...(extra.opsetDomains ?? []).map((domain) => ({ domain, version: 1 })),
      ],
    }),
  );

const externalTensor = (name: string, location: string, dims: number[]): TensorProto =>
  create(TensorProtoSchema, {
    name,
    dataType: T.FLOAT,
    dims: dims.map(BigInt),
    dataLocation: TensorProto_DataLocation.EXTERNAL,
    externalData: [
      create(StringStringEntryProtoSchema, { key: 'location', value: location }),
      create(StringStringEntryProtoSchema, { key: 'offset', value: '0' }),
      create(StringStringEntryProtoSchema, { key: 'length', value: String(4 * dims[0]!) }),
    ],
  });

const ones = (name: string, n: number): TensorProto =>
  tensor(name, T.FLOAT, [n], new Array(n).fill(1));

/** `If(cond)` whose then-branch is `inner` and else-branch a plain Identity. */
const ifNode = (name: string, thenBranch: GraphProto): NodeProto =>
  node(
    'If',
    ['cond'],
    ['branch_out'],
    {
      then_branch: thenBranch,
      else_branch: graph({
        name: `${name}_else`,
        nodes: [node('Identity', ['x'], ['else_out'])],
        inputs: [],
        outputs: [valueInfo('else_out', T.FLOAT, ['batch', 4])],
      }),
    },
    name,
  );

const controlFlowModel = (ifN: NodeProto): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        inputs: [valueInfo('x', T.FLOAT, ['batch', 4]), valueInfo('cond', T.BOOL, [])],
        outputs: [valueInfo('branch_out', T.FLOAT, ['batch', 4])],
        nodes: [ifN],
      }),
      opset: 17,
    }),
  );

const constantBranch = (name: string, value: TensorProto): GraphProto =>
  graph({
    name,
    nodes: [
      node('Constant', [], ['c'], { value }, `${name}_constant`),
      node('Add', ['x', 'c'], ['then_out']),
    ],
    inputs: [],
    outputs: [valueInfo('then_out', T.FLOAT, ['batch', 4])],
  });

/** If nodes nested `depth` deep through their then-branches. */
const nestedIfs = (depth: number): Uint8Array => {
  let inner = graph({
    name: `level_${depth}`,
    nodes: [node('Identity', ['x'], ['then_out'])],
    inputs: [],
    outputs: [valueInfo('then_out', T.FLOAT, ['batch', 4])],
  });
  for (let level = depth - 1; level >= 1; level--) {
    const n = ifNode(`if_${level}`, inner);
    n.output = ['then_out'];
    inner = graph({
      name: `level_${level}`,
      nodes: [n],
      inputs: [],
      outputs: [valueInfo('then_out', T.FLOAT, ['batch', 4])],
    });
  }
  return controlFlowModel(ifNode('if_0', inner));
};

/**
 * If-in-If `levels` deep, written straight on the wire: deeper than protobuf encoders will build
 * from objects, which is what a hand-crafted attack would send.
 */
const wireNestedIfs = (levels: number): Uint8Array => {
  const { LengthDelimited: LEN, Varint } = WireType;
  let g = new BinaryWriter().tag(2, LEN).string('leaf').finish();
  for (let i = 0; i < levels; i++) {
    const attr = new BinaryWriter()
      .tag(1, LEN)
      .string('then_branch')
      .tag(6, LEN)
      .bytes(g)
      .tag(20, Varint)
      .int32(5)
      .finish();
    const n = new BinaryWriter().tag(4, LEN).string('If').tag(5, LEN).bytes(attr).finish();
    g = new BinaryWriter().tag(1, LEN).bytes(n).tag(2, LEN).string(`level_${i}`).finish();
  }
  return new BinaryWriter().tag(1, Varint).int64(8).tag(7, LEN).bytes(g).finish();
};

const typedInputModel = (input: ReturnType<typeof valueInfo>): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        nodes: [node('Identity', [input.name], ['y'])],
        inputs: [input],
        outputs: [valueInfo('y', T.FLOAT, ['batch', 4])],
      }),
      opset: 17,
    }),
  );

/**
 * `y = Gelu(x)` in the `domain` given, with a model-local function of that very name whose body
 * is an identity: what validation sees as "a function of the model" and what onnxruntime runs
 * (its own kernel, when the domain is one it implements) can differ.
 */
export const shadowingFunctionModel = (
  domain: string,
  options: { functionDomain?: string; opType?: string; nodeOverload?: string } = {},
): Uint8Array => {
  const opType = options.opType ?? 'Gelu';
  const functionDomain = options.functionDomain ?? domain;
  const m = model({
    graph: graph({
      ...io,
      nodes: [
        create(NodeProtoSchema, {
          opType,
          domain,
          input: ['x'],
          output: ['y'],
          overload: options.nodeOverload ?? '',
        }),
      ],
    }),
    opset: [
      { domain: '', version: 17 },
      ...[...new Set([domain, functionDomain])]
        .filter((d) => d !== '')
        .map((d) => ({ domain: d, version: 1 })),
    ],
  });
  m.functions = [
    create(FunctionProtoSchema, {
      name: opType,
      domain: functionDomain,
      input: ['a'],
      output: ['b'],
      node: [node('Identity', ['a'], ['b'])],
      opsetImport: [{ domain: '', version: 17n }],
    }),
  ];
  return encodeModel(m);
};

/**
 * Models that must never be registered, each with the rejection it must earn. Generated fresh
 * and deterministically, so ingest tests can upload the same corpus through S3.
 */
export const hostileModels = (): HostileModel[] => {
  const big = addModel(ones('w', 4096));
  const sparseValues = externalTensor('sparse_values', 'weights.bin', [2]);
  const sparse = create(SparseTensorProtoSchema, {
    values: sparseValues,
    indices: tensor('sparse_indices', T.INT64, [2], [0, 3]),
    dims: [4n],
  });
  const sparseModel = encodeModel(
    model({
      graph: graph({
        ...io,
        nodes: [node('Add', ['x', 'sparse_values'], ['y'])],
        sparseInitializers: [sparse],
      }),
      opset: 17,
    }),
  );
  const random = mulberry32(0xbad);
  const seqInput = create(ValueInfoProtoSchema, {
    name: 'tokens',
    type: create(TypeProtoSchema, {
      value: {
        case: 'sequenceType',
        value: create(TypeProto_SequenceSchema, {
          elemType: create(TypeProtoSchema, {
            value: {
              case: 'tensorType',
              value: create(TypeProto_TensorSchema, { elemType: T.FLOAT }),
            },
          }),
        }),
      },
    }),
  });
  const truncatedW = tensor('w', T.FLOAT, [4], [1, 2, 3, 4]);
  truncatedW.rawData = truncatedW.rawData.slice(0, 12);
  return [
    {
      name: 'external data path on an initializer',
      bytes: addModel(externalTensor('w', '../../etc/passwd', [4])),
      expectedCode: 'ExternalData',
      messageIncludes:
        "Initializer 'w' of graph 'graph' keeps its data outside the model file (location '../../etc/passwd')",
    },
    {
      name: 'external data hidden in a sparse initializer',
      bytes: sparseModel,
      expectedCode: 'ExternalData',
      messageIncludes: "The values tensor of sparse initializer 'sparse_values'",
    },
    {
      name: 'external data in a Constant node inside an If subgraph',
      bytes: controlFlowModel(
        ifNode('gate', constantBranch('then', externalTensor('c', '/proc/self/environ', [4]))),
      ),
      expectedCode: 'ExternalData',
      messageIncludes: "attribute 'value' of node 'then_constant' (Constant) in graph 'then'",
    },
    {
      name: 'truncated file',
      bytes: big.slice(0, Math.floor(big.length / 2)),
      expectedCode: 'Truncated',
      messageIncludes: 'Upload the complete .onnx file again',
    },
    {
      name: 'random bytes',
      bytes: Uint8Array.from({ length: 4096 }, () => Math.floor(random() * 256)),
      expectedCode: 'NotOnnx',
      messageIncludes: 'not an ONNX model',
    },
    {
      name: 'empty file',
      bytes: new Uint8Array(0),
      expectedCode: 'Empty',
      messageIncludes: 'The file is empty',
    },
    {
      name: 'model without a graph',
      bytes: encodeModel({
        ...model({ graph: graph({ ...io, nodes: [] }), opset: 17 }),
        graph: undefined,
      }),
      expectedCode: 'NoGraph',
      messageIncludes: 'no graph',
    },
    {
      name: 'custom-domain op',
      bytes: addModel(ones('w', 4), {
        nodes: [node('Exfiltrate', ['y'], ['leak'], {}, { name: 'backdoor', domain: 'com.evil' })],
        opsetDomains: ['com.evil'],
      }),
      expectedCode: 'DisallowedOp',
      messageIncludes: "Node 'backdoor' (com.evil::Exfiltrate)",
    },
    {
      name: 'If subgraphs nested over the depth cap',
      bytes: nestedIfs(12),
      expectedCode: 'NestingTooDeep',
      messageIncludes: 'nested more than 8 deep',
    },
    {
      name: 'If subgraphs nested 5000 deep on the wire',
      bytes: wireNestedIfs(5000),
      expectedCode: 'NestingTooDeep',
      messageIncludes: 'too deeply to decode safely',
    },
    {
      name: 'dims whose product overflows',
      bytes: typedInputModel(valueInfo('x', T.FLOAT, [2 ** 30, 2 ** 30, 2 ** 30])),
      expectedCode: 'DimOverflow',
      messageIncludes: 'overflows 2^53',
    },
    {
      name: 'a dim over the cap',
      bytes: typedInputModel(valueInfo('x', T.FLOAT, [2 ** 40])),
      expectedCode: 'DimTooLarge',
      messageIncludes: 'declares a dimension of 1099511627776',
    },
    {
      name: 'tensor data inconsistent with its dims',
      bytes: addModel(truncatedW),
      expectedCode: 'TensorDataMismatch',
      messageIncludes: 'carries 12 bytes of data (16 expected)',
    },
    {
      name: 'file over the size cap',
      bytes: big,
      expectedCode: 'TooLarge',
      messageIncludes: 'over the 8192 bytes limit',
      limits: { maxBytes: 8192 },
    },
    {
      name: 'more nodes than the cap',
      bytes: addModel(ones('w', 4), {
        nodes: Array.from({ length: 20 }, (_, i) => node('Identity', ['y'], [`copy_${i}`])),
      }),
      expectedCode: 'TooManyNodes',
      messageIncludes: 'more than 10 nodes',
      limits: { maxNodes: 10 },
    },
    {
      name: 'a tensor over the element cap',
      bytes: addModel(ones('w', 4096)),
      expectedCode: 'TooManyElements',
      messageIncludes: 'declares 4096 elements, over the cap of 1000',
      limits: { maxElements: 1000 },
    },
    {
      name: 'a model-local function shadowing com.microsoft::Gelu',
      bytes: shadowingFunctionModel('com.microsoft'),
      expectedCode: 'ShadowedOp',
      messageIncludes: "Function 'com.microsoft::Gelu' is defined in the operator domain",
    },
    {
      name: 'sequence-typed input',
      bytes: typedInputModel(seqInput),
      expectedCode: 'UnsupportedIoType',
      messageIncludes: "input 'tokens' is a sequence value",
    },
    {
      name: 'bfloat16 input',
      bytes: typedInputModel(valueInfo('x', T.BFLOAT16, ['batch', 4])),
      expectedCode: 'UnsupportedElementType',
      messageIncludes: "input 'x' has element type BFLOAT16",
    },
    {
      // onnxruntime quotes node names in its log lines: a newline would start a line of its own
      name: 'node name forging a log line',
      bytes: encodeModel(
        model({
          graph: graph({
            ...io,
            nodes: [node('Add', ['x', 'w'], ['y'], {}, 'add\n{"_aws":{"CloudWatchMetrics":[]}}')],
            initializers: [ones('w', 4)],
          }),
          opset: 17,
        }),
      ),
      expectedCode: 'ControlCharacterInName',
      messageIncludes: 'holds a control character',
    },
    {
      // onnxruntime ran the first `w`, the quantizer took the last: int8 served another model
      name: 'two initializers of one name',
      bytes: encodeModel(
        model({
          graph: graph({
            ...io,
            nodes: [node('Add', ['x', 'w'], ['y'])],
            initializers: [ones('w', 4), ones('w', 4)],
          }),
          opset: 17,
        }),
      ),
      expectedCode: 'DuplicateName',
      messageIncludes: 'declares the initializer "w" more than once',
    },
    {
      name: 'two opset imports of the default domain',
      bytes: encodeModel(
        model({
          graph: graph({
            ...io,
            nodes: [node('Add', ['x', 'w'], ['y'])],
            initializers: [ones('w', 4)],
          }),
          opset: [
            { domain: '', version: 17 },
            { domain: '', version: 7 },
          ],
        }),
      ),
      expectedCode: 'DuplicateName',
      messageIncludes: 'declares an opset import for domain "" more than once',
    },
    {
      name: 'two graph outputs of one name',
      bytes: encodeModel(
        model({
          graph: graph({
            ...io,
            outputs: [...io.outputs, ...io.outputs],
            nodes: [node('Add', ['x', 'w'], ['y'])],
            initializers: [ones('w', 4)],
          }),
          opset: 17,
        }),
      ),
      expectedCode: 'DuplicateName',
      messageIncludes: 'declares the graph output "y" more than once',
    },
  ];
};

/**
 * `y = x + trips` by a Loop adding 1 per iteration, `trips` an INT64 input: the request decides
 * how long the run takes (~1 µs per trip on one core), from an instant to hours. Static checks
 * and a warm-up on small samples see nothing wrong.
 */
export const inputLoopModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'input_loop',
        nodes: [countingLoop([1, 4])],
        inputs: [valueInfo('trips', T.INT64, []), valueInfo('x', T.FLOAT, [1, 4])],
        outputs: [valueInfo('y', T.FLOAT, [1, 4])],
      }),
      opset: 17,
    }),
  );

/** The V2 body asking {@link inputLoopModel} for `trips` iterations. */
export const inputLoopRequest = (trips: number): string =>
  JSON.stringify({
    inputs: [
      { name: 'trips', datatype: 'INT64', shape: [], data: [trips] },
      { name: 'x', datatype: 'FP32', shape: [1, 4], data: [0, 0, 0, 0] },
    ],
  });
