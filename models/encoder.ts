import {
  encodeModel,
  graph,
  model,
  type NodeProto,
  node,
  TensorProto_DataType as T,
  type TensorProto,
  tensor,
  valueInfo,
} from '../src/onnx/index.ts';
import { gaussian, mulberry32 } from '../src/util/index.ts';

/** all-MiniLM-L6-v2's shape: 6 post-LN layers, hidden 384, 12 heads, FFN 1536. */
export const ENCODER = {
  layers: 6,
  hidden: 384,
  heads: 12,
  ffn: 1536,
  /** small on purpose: the projections, not the embedding table, should dominate the file */
  vocab: 1024,
  maxPositions: 512,
} as const;

const SEED = 20240611;

/**
 * A MiniLM-shaped float32 sentence encoder with deterministic random weights: `input_ids` and
 * `attention_mask` INT64 [batch, sequence] → `last_hidden_state` FP32 [batch, sequence, 384] and
 * `sentence_embedding` FP32 [batch, 384] (mask-weighted mean pooling). Weights are drawn with
 * std 1/√fan_in so activations stay near unit scale through all layers, which makes attention
 * non-trivial and quantization error measurable.
 */
export const buildEncoderModel = (): Uint8Array => {
  const { layers, hidden, heads, ffn, vocab, maxPositions } = ENCODER;
  const headDim = hidden / heads;
  const normal = gaussian(mulberry32(SEED));
  const inits: TensorProto[] = [];
  const nodes: NodeProto[] = [];

  const random = (name: string, dims: number[], std: number, mean = 0): string => {
    const n = dims.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = mean + std * normal();
    inits.push(tensor(name, T.FLOAT, dims, values));
    return name;
  };
  const constant = (name: string, type: number, dims: number[], values: number[]): string => {
    inits.push(tensor(name, type, dims, values));
    return name;
  };
  const op = (
    type: string,
    inputs: string[],
    output: string,
    attrs: Parameters<typeof node>[3] = {},
  ): string => {
    nodes.push(node(type, inputs, [output], attrs, output));
    return output;
  };
  const linear = (x: string, name: string, inDim: number, outDim: number): string =>
    op(
      'Add',
      [
        op(
          'MatMul',
          [x, random(`${name}.weight`, [inDim, outDim], 1 / Math.sqrt(inDim))],
          `${name}.mm`,
        ),
        random(`${name}.bias`, [outDim], 0.02),
      ],
      `${name}.out`,
    );
  const layerNorm = (x: string, name: string): string =>
    op(
      'LayerNormalization',
      [x, random(`${name}.gamma`, [hidden], 0.02, 1), random(`${name}.beta`, [hidden], 0.02)],
      `${name}.out`,
      { axis: -1, epsilon: 1e-12 },
    );

  const splitShape = constant('split_heads_shape', T.INT64, [4], [0, 0, heads, headDim]);
  const mergeShape = constant('merge_heads_shape', T.INT64, [3], [0, 0, hidden]);
  const one = constant('one', T.FLOAT, [], [1]);
  const half = constant('half', T.FLOAT, [], [0.5]);

  // embeddings: token + position, then LayerNorm
  const tokens = op('Gather', [random('token_embeddings', [vocab, hidden], 1), 'input_ids'], 'tok');
  const seqLen = op(
    'Gather',
    [op('Shape', ['input_ids'], 'ids_shape'), constant('axis1', T.INT64, [], [1])],
    'seq_len',
  );
  const positions = op(
    'Range',
    [constant('zero_i', T.INT64, [], [0]), seqLen, constant('one_i', T.INT64, [], [1])],
    'positions',
  );
  const posEmb = op(
    'Gather',
    [random('position_embeddings', [maxPositions, hidden], 0.1), positions],
    'pos',
  );
  let x = layerNorm(op('Add', [tokens, posEmb], 'emb_sum'), 'emb_ln');

  // additive attention bias from the mask: 0 where attended, −10000 where padded; [B, 1, 1, S]
  const maskF = op('Cast', ['attention_mask'], 'mask_f', { to: T.FLOAT });
  const maskBias = op(
    'Mul',
    [
      op(
        'Sub',
        [one, op('Unsqueeze', [maskF, constant('axes12', T.INT64, [2], [1, 2])], 'mask4')],
        'mask_inv',
      ),
      constant('neg_big', T.FLOAT, [], [-10000]),
    ],
    'mask_bias',
  );
  const scale = constant('attn_scale', T.FLOAT, [], [1 / Math.sqrt(headDim)]);
  const invSqrt2 = constant('inv_sqrt2', T.FLOAT, [], [Math.SQRT1_2]);

  for (let l = 0; l < layers; l++) {
    const p = `layer${l}`;
    const heads4 = (name: string, perm: number[]): string =>
      op(
        'Transpose',
        [
          op(
            'Reshape',
            [linear(x, `${p}.${name}`, hidden, hidden), splitShape],
            `${p}.${name}.split`,
          ),
        ],
        `${p}.${name}.t`,
        { perm },
      );
    const q = heads4('query', [0, 2, 1, 3]);
    const k = heads4('key', [0, 2, 3, 1]);
    const v = heads4('value', [0, 2, 1, 3]);
    const scores = op(
      'Add',
      [op('Mul', [op('MatMul', [q, k], `${p}.qk`), scale], `${p}.qk_scaled`), maskBias],
      `${p}.scores`,
    );
    const probs = op('Softmax', [scores], `${p}.probs`, { axis: -1 });
    const context = op(
      'Reshape',
      [
        op('Transpose', [op('MatMul', [probs, v], `${p}.ctx4`)], `${p}.ctx_t`, {
          perm: [0, 2, 1, 3],
        }),
        mergeShape,
      ],
      `${p}.ctx`,
    );
    const attn = linear(context, `${p}.attn_out`, hidden, hidden);
    x = layerNorm(op('Add', [x, attn], `${p}.res1`), `${p}.ln1`);
    // GELU, exact form: 0.5·h·(1 + erf(h/√2))
    const h = linear(x, `${p}.ffn_in`, hidden, ffn);
    const erf = op('Erf', [op('Mul', [h, invSqrt2], `${p}.gelu_scaled`)], `${p}.gelu_erf`);
    const gelu = op(
      'Mul',
      [op('Mul', [h, half], `${p}.gelu_half`), op('Add', [erf, one], `${p}.gelu_1p`)],
      `${p}.gelu`,
    );
    const f = linear(gelu, `${p}.ffn_out`, ffn, hidden);
    x = layerNorm(op('Add', [x, f], `${p}.res2`), `${p}.ln2`);
  }
  nodes.push(node('Identity', [x], ['last_hidden_state'], {}, 'last_hidden_state'));

  // mean over attended tokens: Σ mask·h / max(Σ mask, 1)
  const mask3 = op('Unsqueeze', [maskF, constant('axes2', T.INT64, [1], [2])], 'mask3');
  const summed = op(
    'ReduceSum',
    [op('Mul', ['last_hidden_state', mask3], 'masked'), constant('axes1', T.INT64, [1], [1])],
    'summed',
    { keepdims: 0 },
  );
  const counts = op(
    'Max',
    [op('ReduceSum', [mask3, 'axes1'], 'counts_raw', { keepdims: 0 }), one],
    'counts',
  );
  nodes.push(node('Div', [summed, counts], ['sentence_embedding'], {}, 'sentence_embedding'));

  return encodeModel(
    model({
      graph: graph({
        name: 'minilm_shaped_encoder',
        nodes,
        inputs: [
          valueInfo('input_ids', T.INT64, ['batch', 'sequence']),
          valueInfo('attention_mask', T.INT64, ['batch', 'sequence']),
        ],
        outputs: [
          valueInfo('last_hidden_state', T.FLOAT, ['batch', 'sequence', hidden]),
          valueInfo('sentence_embedding', T.FLOAT, ['batch', hidden]),
        ],
        initializers: inits,
      }),
      opset: 17,
      producer: { name: 'onnx-maas', version: 'encoder-1' },
    }),
  );
};

/** Sample requests: a few batches and lengths, trailing padding masked out in the batched ones. */
export const encoderSamples = (): {
  inputs: { name: string; datatype: 'INT64'; shape: number[]; data: number[] }[];
}[] => {
  const rand = mulberry32(SEED + 1);
  const cases: readonly { batch: number; seq: number }[] = [
    { batch: 1, seq: 8 },
    { batch: 1, seq: 32 },
    { batch: 2, seq: 16 },
    { batch: 4, seq: 24 },
  ];
  return cases.map(({ batch, seq }) => {
    const ids: number[] = [];
    const mask: number[] = [];
    for (let b = 0; b < batch; b++) {
      // later rows of a batch are shorter, as padded real sentences are
      const length = seq - b * Math.floor(seq / (2 * batch));
      for (let s = 0; s < seq; s++) {
        const real = s < length;
        ids.push(real ? 1 + Math.floor(rand() * (ENCODER.vocab - 1)) : 0);
        mask.push(real ? 1 : 0);
      }
    }
    return {
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [batch, seq], data: ids },
        { name: 'attention_mask', datatype: 'INT64', shape: [batch, seq], data: mask },
      ],
    };
  });
};
