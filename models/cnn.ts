import {
  encodeModel,
  graph,
  model,
  type NodeProto,
  node,
  type TensorProto,
  TensorProto_DataType,
  tensor,
  valueInfo,
} from '../src/onnx/index.ts';
import { gaussian, mulberry32 } from '../src/util/index.ts';

const FLOAT = TensorProto_DataType.FLOAT;

export interface CnnSpec {
  /** input height and width */
  size: number;
  /** channels of each stage; every stage after the first halves the resolution */
  widths: readonly number[];
  /** residual blocks per stage */
  blocks: number;
  classes: number;
  /** a 7×7 stride-2 stem and a max pool (ResNet's), instead of one 3×3 conv */
  imagenetStem?: boolean;
  opset?: number;
  seed?: number;
}

/** ResNet-18's shape at 224×224 (11.7 M parameters, 47 MB). */
export const RESNET18: CnnSpec = {
  size: 224,
  widths: [64, 128, 256, 512],
  blocks: 2,
  classes: 1000,
  imagenetStem: true,
};

/** A small ResNet for tests: 32×32, three stages, runs in about a millisecond. */
export const SMALL_CNN: CnnSpec = { size: 32, widths: [16, 32, 64], blocks: 1, classes: 10 };

/**
 * A ResNet-style image classifier with He-initialised weights and BatchNormalization after every
 * conv (as exporters leave it): x [batch, 3, size, size] → logits [batch, classes]. Deterministic
 * for a spec.
 */
export const buildCnnModel = (spec: CnnSpec): Uint8Array => {
  const next = gaussian(mulberry32(spec.seed ?? 7));
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let id = 0;
  const floats = (n: number, std: number, mean = 0) =>
    Float32Array.from({ length: n }, () => mean + next() * std);
  const conv = (x: string, cin: number, cout: number, k: number, stride: number, relu: boolean) => {
    const n = `conv${id++}`;
    inits.push(
      tensor(
        `${n}.w`,
        FLOAT,
        [cout, cin, k, k],
        floats(cout * cin * k * k, Math.sqrt(2 / (cin * k * k))),
      ),
      tensor(`${n}.gamma`, FLOAT, [cout], floats(cout, 0.1, 1)),
      tensor(`${n}.beta`, FLOAT, [cout], floats(cout, 0.1)),
      tensor(`${n}.mean`, FLOAT, [cout], floats(cout, 0.1)),
      tensor(`${n}.var`, FLOAT, [cout], Float32Array.from(floats(cout, 0.2, 1), Math.abs)),
    );
    const pad = k >> 1;
    nodes.push(
      node(
        'Conv',
        [x, `${n}.w`],
        [`${n}.out`],
        {
          kernel_shape: [k, k],
          strides: [stride, stride],
          pads: [pad, pad, pad, pad],
        },
        n,
      ),
      node(
        'BatchNormalization',
        [`${n}.out`, `${n}.gamma`, `${n}.beta`, `${n}.mean`, `${n}.var`],
        [`${n}.bn`],
        {},
        `${n}.bn`,
      ),
    );
    if (!relu) return `${n}.bn`;
    nodes.push(node('Relu', [`${n}.bn`], [`${n}.relu`], {}, `${n}.relu`));
    return `${n}.relu`;
  };

  const first = spec.widths[0] ?? 16;
  let x = conv('x', 3, first, spec.imagenetStem ? 7 : 3, spec.imagenetStem ? 2 : 1, true);
  if (spec.imagenetStem) {
    nodes.push(
      node(
        'MaxPool',
        [x],
        ['stem.pool'],
        { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
        'stem.pool',
      ),
    );
    x = 'stem.pool';
  }
  let cin = first;
  for (const [stage, width] of spec.widths.entries()) {
    for (let b = 0; b < spec.blocks; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const h = conv(x, cin, width, 3, stride, true);
      const y = conv(h, width, width, 3, 1, false);
      const shortcut = stride !== 1 || cin !== width ? conv(x, cin, width, 1, stride, false) : x;
      const name = `block${stage}.${b}`;
      nodes.push(
        node('Add', [y, shortcut], [`${name}.sum`], {}, `${name}.add`),
        node('Relu', [`${name}.sum`], [`${name}.out`], {}, `${name}.relu`),
      );
      x = `${name}.out`;
      cin = width;
    }
  }
  inits.push(
    tensor('fc.w', FLOAT, [spec.classes, cin], floats(spec.classes * cin, Math.sqrt(1 / cin))),
    tensor('fc.b', FLOAT, [spec.classes], floats(spec.classes, 0.01)),
  );
  nodes.push(
    node('GlobalAveragePool', [x], ['pool'], {}, 'pool'),
    node('Flatten', ['pool'], ['features'], { axis: 1 }, 'flatten'),
    node('Gemm', ['features', 'fc.w', 'fc.b'], ['logits'], { transB: 1 }, 'fc'),
  );
  return encodeModel(
    model({
      opset: spec.opset ?? 13,
      producer: 'onnx-maas models/cnn.ts',
      graph: graph({
        name: 'resnet',
        nodes,
        initializers: inits,
        inputs: [valueInfo('x', FLOAT, ['batch', 3, spec.size, spec.size])],
        outputs: [valueInfo('logits', FLOAT, ['batch', spec.classes])],
      }),
    }),
  );
};

/** Images for a CNN of `size`: smooth random fields, normalised like ImageNet inputs. */
export const cnnImages = (size: number, count: number, seed = 11): Float32Array[] => {
  const next = gaussian(mulberry32(seed));
  return Array.from({ length: count }, () => {
    const out = new Float32Array(3 * size * size);
    for (let c = 0; c < 3; c++) {
      const [fx, fy, phase] = [1 + Math.abs(next()) * 3, 1 + Math.abs(next()) * 3, next()];
      for (let i = 0; i < size; i++) {
        for (let j = 0; j < size; j++) {
          out[(c * size + i) * size + j] =
            Math.sin(((fx * i) / size) * Math.PI + phase) * Math.cos(((fy * j) / size) * Math.PI) +
            0.3 * next();
        }
      }
    }
    return out;
  });
};
