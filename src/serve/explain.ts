import type { Tensor } from 'onnxruntime-node';
import { errorMessage, MaasError } from '../errors/index.ts';
import {
  type BaselineChoice,
  ExplainDisabledError,
  type ExplainInput,
  type ExplainOptions,
  ExplainParameterError,
  type ExplainParameters,
  type ExplainSettings,
  type Explanation,
  ExplanationTooCostlyError,
  explain,
  parseExplainParameters,
  plan as planExplanation,
  type WindowChoice,
} from '../explain/index.ts';
import type { MetricValues } from '../metrics/index.ts';
import type { Datatype, NumericData, TensorSpec } from '../onnx/index.ts';
import {
  checkInferMediaType,
  checkResponseSize,
  type DecodedTensor,
  decodeV1Request,
  type HttpRequest,
  type HttpResponse,
  inferPath,
  JSON_CONTENT_TYPE,
  requireBody,
} from '../protocol/index.ts';
import type { InputMean } from '../registry/index.ts';
import { fromOrtTensor, type LoadedModel, toOrtTensor } from '../runtime/index.ts';
import { acquireDecoded, decodeLimits, type Exchange, type InferDeps } from './infer.ts';

export interface ExplainDeps extends InferDeps {
  explain: ExplainSettings;
}

/** What an explain request spent, for its metrics and log record. */
export interface ExplainRecord {
  evaluations: number;
  method: Explanation['method'];
}

/** The explain request metrics (docs/design.md, "Metrics"): never Requests or ModelErrors. */
export const explainMetrics = (ex: Exchange, latencyMs: number): MetricValues => ({
  ExplainRequests: 1,
  ExplainLatency: latencyMs,
  ...(ex.explain === undefined ? {} : { ExplainEvaluations: ex.explain.evaluations }),
});

export const explainPath = (model: string, version?: number): string =>
  inferPath(model, version).replace(/\/infer$/, '/explain');

const UNSUPPORTED: ReadonlySet<Datatype> = new Set(['BYTES', 'FP16']);
const INTEGER: ReadonlySet<Datatype> = new Set([
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
]);

/** What a baseline of each integer type may hold (64-bit ones: what a JSON number holds exactly). */
const INTEGER_RANGE: Partial<Record<Datatype, readonly [number, number]>> = {
  BOOL: [0, 1],
  UINT8: [0, 255],
  UINT16: [0, 65_535],
  UINT32: [0, 4_294_967_295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT8: [-128, 127],
  INT16: [-32_768, 32_767],
  INT32: [-2_147_483_648, 2_147_483_647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** Floating-point data as it is, other data converted: read-only numbers. */
const asNumbers = (data: DecodedTensor['data']): ArrayLike<number> =>
  data instanceof Float32Array || data instanceof Float64Array ? data : numbersOf(data);

const numbersOf = (data: DecodedTensor['data']): Float64Array => {
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
};

/**
 * A feed buffer of `n` elements in the input's datatype, and how to write composed values into
 * it. The methods compose integer inputs from x and integer baselines only, so `set`'s
 * conversion keeps them exact; 64-bit integers and BOOL need their own.
 */
const feedBuffer = (
  datatype: Datatype,
  n: number,
): { data: NumericData; write: (values: Float64Array, at: number) => void } => {
  const typed = (data: Exclude<NumericData, BigInt64Array | BigUint64Array>) => ({
    data,
    write: (values: Float64Array, at: number) => data.set(values, at),
  });
  switch (datatype) {
    case 'FP32':
      return typed(new Float32Array(n));
    case 'FP64':
      return typed(new Float64Array(n));
    case 'INT32':
      return typed(new Int32Array(n));
    case 'INT16':
      return typed(new Int16Array(n));
    case 'INT8':
      return typed(new Int8Array(n));
    case 'UINT32':
      return typed(new Uint32Array(n));
    case 'UINT16':
      return typed(new Uint16Array(n));
    case 'UINT8':
      return typed(new Uint8Array(n));
    case 'BOOL': {
      const data = new Uint8Array(n);
      return {
        data,
        write: (values, at) => {
          for (let i = 0; i < values.length; i++) data[at + i] = values[i] === 0 ? 0 : 1;
        },
      };
    }
    case 'INT64': {
      const data = new BigInt64Array(n);
      return {
        data,
        write: (values, at) => {
          for (let i = 0; i < values.length; i++) data[at + i] = BigInt(Math.round(values[i] ?? 0));
        },
      };
    }
    case 'UINT64': {
      const data = new BigUint64Array(n);
      return {
        data,
        write: (values, at) => {
          for (let i = 0; i < values.length; i++) {
            data[at + i] = BigInt(Math.max(0, Math.round(values[i] ?? 0)));
          }
        },
      };
    }
    default:
      throw new ExplainParameterError(`datatype ${datatype} cannot be explained`);
  }
};

const showShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;
const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The time an explanation may take: the invocation's remaining time less a margin, and the cap. */
const timeAllowed = (deps: ExplainDeps, request: HttpRequest): number => {
  const remaining =
    request.deadline === undefined ? Number.POSITIVE_INFINITY : request.deadline - Date.now();
  return Math.min(deps.explain.maxMs, remaining - deps.explain.marginMs);
};

interface Example {
  inputs: DecodedTensor[];
}

interface Explained {
  output: string;
  target: number;
  prediction: number;
  baseline: 'samples-mean' | 'zeros' | 'explicit';
  baselineNote?: string;
  explanation: Explanation;
  /** per input, the request's shape */
  shapes: number[][];
  /** the prediction's own run, when it ran alone (else it rode in the first batch) */
  predictionMs?: number;
  evaluationMs: number;
  /** items of each model run, in order */
  runs: number[];
}

const windowsFor = (
  choice: WindowChoice | undefined,
  specs: readonly TensorSpec[],
  what: string,
): (readonly number[] | undefined)[] | undefined => {
  if (choice === undefined) return undefined;
  if (Array.isArray(choice)) return specs.map(() => choice as readonly number[]);
  const byName = choice as Readonly<Record<string, readonly number[]>>;
  for (const name of Object.keys(byName)) {
    if (!specs.some((s) => s.name === name)) {
      throw new ExplainParameterError(
        `parameters.${what} names input ${JSON.stringify(name)}, which the model does not have; ` +
          `its inputs are: ${specs.map((s) => s.name).join(', ')}`,
      );
    }
  }
  return specs.map((s) => (Object.hasOwn(byName, s.name) ? byName[s.name] : undefined));
};

const meanBaseline = (
  spec: TensorSpec,
  exampleShape: readonly number[],
  mean: InputMean,
): Float64Array => {
  const n = count(exampleShape);
  const same =
    mean.elements !== undefined &&
    mean.shape !== undefined &&
    mean.shape.length === exampleShape.length &&
    mean.shape.every((d, i) => d === exampleShape[i]);
  const values = same
    ? Float64Array.from(mean.elements ?? [])
    : new Float64Array(n).fill(mean.mean);
  if (INTEGER.has(spec.datatype))
    for (let i = 0; i < n; i++) values[i] = Math.round(values[i] ?? 0);
  return values;
};

const baselines = async (
  deps: ExplainDeps,
  loaded: LoadedModel,
  choice: BaselineChoice,
  specs: readonly TensorSpec[],
  exampleShapes: readonly number[][],
): Promise<Pick<Explained, 'baseline' | 'baselineNote'> & { values: Float64Array[] }> => {
  const zeros = () => exampleShapes.map((shape) => new Float64Array(count(shape)));
  if (choice.kind === 'zeros') return { baseline: 'zeros', values: zeros() };
  if (choice.kind === 'samples-mean') {
    const { manifest } = await deps.provider.describe(loaded.model, loaded.version);
    const means = manifest.sampleMeans;
    if (means === undefined || specs.some((s) => means[s.name] === undefined)) {
      return {
        baseline: 'zeros',
        baselineNote:
          `version ${loaded.version} was registered without sample requests, so it has no ` +
          'samples-mean baseline: zeros were used (send parameters.baseline to choose one)',
        values: zeros(),
      };
    }
    return {
      baseline: 'samples-mean',
      values: specs.map((spec, k) =>
        meanBaseline(spec, exampleShapes[k] ?? [], means[spec.name] as InputMean),
      ),
    };
  }
  for (const name of Object.keys(choice.values)) {
    if (!specs.some((s) => s.name === name)) {
      throw new ExplainParameterError(
        `parameters.baseline names input ${JSON.stringify(name)}, which the model does not have; ` +
          `its inputs are: ${specs.map((s) => s.name).join(', ')}`,
      );
    }
  }
  const values = specs.map((spec, k) => {
    const shape = exampleShapes[k] ?? [];
    const given = Object.hasOwn(choice.values, spec.name) ? choice.values[spec.name] : undefined;
    if (given === undefined) {
      throw new ExplainParameterError(
        `parameters.baseline has no values for input ${JSON.stringify(spec.name)}; give every ` +
          `input ${specs.map((s) => s.name).join(', ')} a baseline, or send "samples-mean" or "zeros"`,
      );
    }
    if (given.length !== count(shape)) {
      throw new ExplainParameterError(
        `parameters.baseline for input ${JSON.stringify(spec.name)} has ${given.length} values; ` +
          `send ${count(shape)}, shaped like one example ${showShape(shape)}`,
      );
    }
    if (INTEGER.has(spec.datatype) && !given.every(Number.isInteger)) {
      throw new ExplainParameterError(
        `parameters.baseline for input ${JSON.stringify(spec.name)} must hold integers: the input is ${spec.datatype}`,
      );
    }
    // 1e300 as an INT64 id would wrap to 0 without a word (found by attack)
    const range = INTEGER_RANGE[spec.datatype];
    if (range !== undefined && !given.every((v) => v >= range[0] && v <= range[1])) {
      throw new ExplainParameterError(
        `parameters.baseline for input ${JSON.stringify(spec.name)} must hold ${spec.datatype} ` +
          `values from ${range[0]} to ${range[1]}`,
      );
    }
    if (spec.datatype === 'FP32' && !given.every((v) => Number.isFinite(Math.fround(v)))) {
      throw new ExplainParameterError(
        `parameters.baseline for input ${JSON.stringify(spec.name)} must lie within FP32's ` +
          'range (±3.4028235e38): the input is FP32',
      );
    }
    return Float64Array.from(given);
  });
  return { baseline: 'explicit', values };
};

/** The explained element when none is named: a classifier's top class, else the first element. */
const defaultTarget = (values: Float64Array, exampleShape: readonly number[]): number => {
  if (exampleShape.length !== 1 || (exampleShape[0] ?? 0) < 2) return 0;
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] ?? 0) > (values[best] ?? 0)) best = i;
  return best;
};

/** The inputs' specs, refusing the datatypes explanations cannot perturb. */
const perturbableSpecs = (loaded: LoadedModel, example: Example): TensorSpec[] =>
  example.inputs.map((input) => {
    const spec = loaded.inputs.find((s) => s.name === input.name);
    if (spec === undefined) throw new MaasError('MissingInput', `no spec for input ${input.name}`);
    if (UNSUPPORTED.has(spec.datatype)) {
      throw new ExplainParameterError(
        `input ${JSON.stringify(spec.name)} is ${spec.datatype}; explanations perturb numeric ` +
          'inputs (FP32, FP64, integers, BOOL): POST to /infer for a prediction',
      );
    }
    return spec;
  });

/** The explained output: the one asked for, else the first; numeric. */
const explainedOutput = (loaded: LoadedModel, params: ExplainParameters): TensorSpec => {
  const outputName = params.output ?? loaded.outputs[0]?.name ?? '';
  const outputSpec = loaded.outputs.find((o) => o.name === outputName);
  if (outputSpec === undefined) {
    throw new ExplainParameterError(
      `parameters.output ${JSON.stringify(outputName)} is not an output of the model; send one of: ` +
        loaded.outputs.map((o) => o.name).join(', '),
    );
  }
  if (UNSUPPORTED.has(outputSpec.datatype)) {
    throw new ExplainParameterError(
      `output ${JSON.stringify(outputName)} is ${outputSpec.datatype}; explain a numeric output: ` +
        loaded.outputs
          .filter((o) => !UNSUPPORTED.has(o.datatype))
          .map((o) => o.name)
          .join(', '),
    );
  }
  return outputSpec;
};

/**
 * Whether perturbed copies can travel as one batch (every input and the output have a dynamic
 * first dim); then the request itself must be a batch of one.
 */
const isBatchable = (specs: TensorSpec[], output: TensorSpec, example: Example): boolean => {
  const batchable = specs.every((s) => s.shape[0] === -1) && output.shape[0] === -1;
  if (!batchable || specs.length === 0) return false;
  const big = example.inputs.find((t) => t.shape[0] !== 1);
  if (big !== undefined) {
    throw new ExplainParameterError(
      `input ${JSON.stringify(big.name)} has a batch of ${big.shape[0]}; an explanation is of ` +
        `one example: send shape [1, ${big.shape.slice(1).join(', ')}] (or use V1 :explain with several instances)`,
    );
  }
  return true;
};

/** Feeds for a list of examples (each one Float64Array per input), batched when possible. */
const feedsFor =
  (example: Example, exampleShapes: number[][], batchable: boolean) =>
  (items: Float64Array[][]): Record<string, Tensor> => {
    const feeds: Record<string, Tensor> = {};
    for (let k = 0; k < example.inputs.length; k++) {
      const input = example.inputs[k] as DecodedTensor;
      const shape = exampleShapes[k] ?? [];
      const n = count(shape);
      const buffer = feedBuffer(input.datatype, n * items.length);
      for (let b = 0; b < items.length; b++) {
        const values = items[b]?.[k];
        if (values !== undefined) buffer.write(values, b * n);
      }
      feeds[input.name] = toOrtTensor({
        name: input.name,
        datatype: input.datatype,
        shape: batchable ? [items.length, ...shape] : input.shape,
        data: buffer.data,
      });
    }
    return feeds;
  };

/** Runs the model for the explained output; a refused run is the request's (a 400). */
const outputRunner =
  (loaded: LoadedModel, outputName: string) =>
  async (feeds: Record<string, Tensor>, what: string) => {
    let results: Record<string, Tensor>;
    try {
      results = await loaded.run(feeds, [outputName]);
    } catch (err) {
      if (err instanceof MaasError) throw err;
      // the request alone failing is its own values' fault, not the baseline's
      throw new ExplainParameterError(
        `the model could not run on ${what}: ${errorMessage(err).slice(0, 300)}; ` +
          (what === 'the request'
            ? "send input values in the ranges of the model's training data"
            : 'send input values and a baseline (parameters.baseline) the model accepts'),
        { cause: err },
      );
    }
    const tensor = results[outputName];
    if (tensor === undefined) {
      throw new MaasError('MissingOutput', `the runtime returned no output ${outputName}`);
    }
    return fromOrtTensor(outputName, tensor);
  };

/** The explained element of the prediction, checked: in range and finite. */
const targetOf = (
  params: ExplainParameters,
  outputName: string,
  outputValues: Float64Array,
  outputShape: number[],
): { target: number; prediction: number } => {
  const perExample = count(outputShape);
  const target = params.target ?? defaultTarget(outputValues, outputShape);
  if (target >= perExample) {
    throw new ExplainParameterError(
      `parameters.target ${target} is out of range: output ${JSON.stringify(outputName)} has ` +
        `${perExample} element(s) per example (shape ${showShape(outputShape)}); send a flat index ` +
        `from 0 to ${perExample - 1}`,
    );
  }
  const prediction = outputValues[target] ?? Number.NaN;
  if (!Number.isFinite(prediction)) {
    throw new ExplainParameterError(
      `output ${JSON.stringify(outputName)}[${target}] is ${prediction} for this input; only a ` +
        'finite output can be attributed: send another target or input',
    );
  }
  return { target, prediction };
};

/**
 * What one evaluation costs in the batched runs of a loaded session, per example shape (a
 * sequence of 512 costs far more than one of 8), learnt from the last explanation of that shape.
 * Knowing it, an explanation checks its whole plan against its time before any run, and the
 * prediction rides in the first batch with the perturbed copies; without it, the prediction runs
 * alone first and its time stands in. Keyed by the session's input specs, which the runtime keeps
 * per loaded session, so the figures leave with an evicted session.
 */
const evaluationCosts = new WeakMap<
  readonly TensorSpec[],
  Map<string, { ms: number; at: number }>
>();

/** Example shapes remembered per session; past it, the first learnt is forgotten. */
const COST_SHAPES = 64;

/** per-example ms of the shape's last timed batch, and that batch's size */
const learntCost = (
  loaded: LoadedModel,
  shapeKey: string,
): { ms: number; at: number } | undefined => evaluationCosts.get(loaded.inputs)?.get(shapeKey);

/** the session's entry of a per-session store, made on first use */
const perSession = <V>(
  store: WeakMap<readonly TensorSpec[], Map<string, V>>,
  loaded: LoadedModel,
): Map<string, V> => {
  let entries = store.get(loaded.inputs);
  if (entries === undefined) {
    entries = new Map();
    store.set(loaded.inputs, entries);
  }
  return entries;
};

const learnCost = (loaded: LoadedModel, shapeKey: string, ms: number, at: number): void => {
  const costs = perSession(evaluationCosts, loaded);
  // the first shape learnt is the first forgotten: a figure only needs to be recent, not ranked
  const known = costs.has(shapeKey);
  costs.set(shapeKey, { ms, at });
  if (!known && costs.size > COST_SHAPES) costs.delete(costs.keys().next().value ?? shapeKey);
};

/**
 * Batches grow as an explanation learns what they cost, so none can run far past its time: until
 * this request has timed a batch, the next may take PROBE_SHARE of the time left at the cost it
 * assumes (the session's learnt figure, which another client's input may have skewed, or its own
 * prediction run × BATCH_PENALTY); once timed, BATCH_SHARE at the dearest per-example cost seen,
 * and never more than GROWTH × the previous batch. Found by attack: a prediction run of 45 ms
 * let a first batch of 64 run for 15 s (one example in a batch of the encoder at 256 tokens cost
 * 2.8× its run alone), and a learnt cost of another input refused every later request.
 */
const PROBE_SHARE = 0.1;
const BATCH_SHARE = 0.5;
const BATCH_PENALTY = 4;
const GROWTH = 2;
/**
 * One example's cost rises with the batch it rides in (the int8 encoder at 128 tokens: 57 ms in a
 * batch of 2, 146 ms in a batch of 64, about (64 ÷ 2)^0.27; found by the second attack): a batch
 * larger than any this request timed is assumed to cost (its size ÷ that size)^0.3 more per example.
 */
const scaledCost = (perExample: number, timedAt: number, size: number): number =>
  size > timedAt ? perExample * (size / timedAt) ** 0.3 : perExample;
/** the budget a 413 advises leaves this much of the time it computes as affordable unspent */
const ADVICE_SHARE = 0.7;
/** bytes an attribution takes in the answer at most: an FP32 as JSON text and a comma */
const ATTRIBUTION_BYTES = 18;

/**
 * Sessions whose answer for an example changes with the batch it rides in: dynamically quantized
 * MatMuls (DynamicQuantizeLinear) take one scale over the whole batch tensor, so batching other
 * examples beside x moved the encoder's attributions by 17–33% (found by attack). Checked once
 * per session and output, by running x again at the head of its first batch and comparing with x
 * alone; such an output is explained one example per run. Per output, since one output of a
 * session may answer each example alone while another mixes the batch; and only a batch holding
 * an item other than x decides (a baseline equal to x makes every copy x, which answers the same
 * beside itself whatever the model: one client could have vouched for every later one, found by
 * the third attack).
 */
const batchCoupling = new WeakMap<readonly TensorSpec[], Map<string, 'coupled' | 'independent'>>();

/** what the session's check found for this output, if it ran */
const couplingOf = (
  loaded: LoadedModel,
  outputName: string,
): 'coupled' | 'independent' | undefined => batchCoupling.get(loaded.inputs)?.get(outputName);

const recordCoupling = (
  loaded: LoadedModel,
  outputName: string,
  verdict: 'coupled' | 'independent',
): void => {
  perSession(batchCoupling, loaded).set(outputName, verdict);
};

/** whether every item of a batch is x itself, input by input and element by element */
const onlyCopiesOf = (x: readonly Float64Array[], batch: readonly Float64Array[][]): boolean =>
  batch.every((item) =>
    x.every((values, k) => {
      const other = item[k];
      if (other === undefined || other.length !== values.length) return false;
      for (let i = 0; i < values.length; i++) {
        if (!Object.is(other[i], values[i])) return false;
      }
      return true;
    }),
  );

/** whether two answers for the same example agree as the same computation's would */
const sameAnswer = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => {
  let scale = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(a[i] ?? 0));
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (!(Math.abs(x - y) <= 1e-5 * Math.max(1, scale))) return Number.isNaN(x) && Number.isNaN(y);
  }
  return true;
};

/** The method's windows and strides per input, as `explain`'s options take them. */
type MethodShape = Pick<ExplainOptions, 'windows' | 'strides'>;

/** What explaining one example needs before its first run, from the request and the model. */
interface ExamplePlan {
  outputName: string;
  /** whether perturbed copies travel as one batch along a dynamic first dim */
  batchable: boolean;
  feedsOf: ReturnType<typeof feedsFor>;
  runOutput: ReturnType<typeof outputRunner>;
  base: Awaited<ReturnType<typeof baselines>>;
  inputs: ExplainInput[];
  /** the most examples one run may hold */
  batchSize: number;
  /** the example shapes, as the session's learnt costs are keyed */
  shapeKey: string;
  shape: MethodShape;
}

/** The method's inputs: x and its baseline, per input, as plain numbers. */
const explainInputs = (
  example: Example,
  exampleShapes: readonly number[][],
  baseline: readonly Float64Array[],
): ExplainInput[] =>
  example.inputs.map((t, k) => ({
    name: t.name,
    shape: exampleShapes[k] ?? [],
    x: numbersOf(t.data),
    baseline: baseline[k] ?? new Float64Array(0),
  }));

/** Refuses, before any run, an example whose attributions could never fit the answer. */
const checkAnswerFits = (deps: ExplainDeps, exampleElements: number): void => {
  // the answer holds one attribution per input element: refuse now what could never be sent
  if (exampleElements * ATTRIBUTION_BYTES > deps.limits.maxResponseBytes) {
    throw new ExplanationTooCostlyError(
      `the attributions of ${exampleElements} input elements would not fit the ` +
        `${deps.limits.maxResponseBytes}-byte answer cap; explain an input of at most ` +
        `${Math.floor(deps.limits.maxResponseBytes / ATTRIBUTION_BYTES)} elements`,
    );
  }
};

/** The most examples one run may hold: the settings' cap, within the elements a run may take. */
const batchSizeFor = (
  deps: ExplainDeps,
  loaded: LoadedModel,
  batchable: boolean,
  exampleElements: number,
): number => {
  // batches stay within the model's own element bound too (what ingest saw it take), not only
  // the platform's: it exists for the instance's memory
  const elementCap = Math.min(
    deps.limits.maxElements,
    loaded.inputLimits?.maxElements ?? Number.POSITIVE_INFINITY,
  );
  return batchable
    ? Math.max(1, Math.min(deps.explain.maxBatch, Math.floor(elementCap / exampleElements)))
    : 1;
};

/** The request's windows and strides, checked against the model's inputs. */
const methodShape = (params: ExplainParameters, specs: readonly TensorSpec[]): MethodShape => ({
  ...(params.window === undefined
    ? {}
    : { windows: windowsFor(params.window, specs, 'window') ?? [] }),
  ...(params.stride === undefined
    ? {}
    : { strides: windowsFor(params.stride, specs, 'stride') ?? [] }),
});

/**
 * Checks the request against the model and plans its explanation: inputs and output, batching,
 * baseline and batch cap; refuses what cannot be explained before any run.
 */
const planExample = async (
  deps: ExplainDeps,
  loaded: LoadedModel,
  example: Example,
  params: ExplainParameters,
): Promise<ExamplePlan> => {
  const specs = perturbableSpecs(loaded, example);
  const output = explainedOutput(loaded, params);
  const batchable = isBatchable(specs, output, example);
  const exampleShapes = example.inputs.map((t) => (batchable ? t.shape.slice(1) : t.shape));
  const feedsOf = feedsFor(example, exampleShapes, batchable);
  const runOutput = outputRunner(loaded, output.name);
  const base = await baselines(deps, loaded, params.baseline, specs, exampleShapes);
  const inputs = explainInputs(example, exampleShapes, base.values);
  const exampleElements = inputs.reduce((sum, input) => sum + input.x.length, 0);
  checkAnswerFits(deps, exampleElements);
  const batchSize = batchSizeFor(deps, loaded, batchable, exampleElements);
  const shapeKey = exampleShapes.map((shape) => shape.join('x')).join(',');
  const shape = methodShape(params, specs);
  return {
    outputName: output.name,
    batchable,
    feedsOf,
    runOutput,
    base,
    inputs,
    batchSize,
    shapeKey,
    shape,
  };
};

/**
 * One example's model runs, as the method asks for them: batches sized to the time left and
 * timed, the session checked for batch coupling, the prediction picked from the first answer,
 * and the explanation refused (413) once what is left of its plan cannot fit its time.
 */
class ExampleRuns {
  /** x's answer from its lone run, to compare with x at the head of the first batch */
  private alone: Float64Array | undefined;
  /** the explained element and its value, known from the first run */
  chosen: { target: number; prediction: number } | undefined;
  /** the explained output's shape for one example, known from the first run */
  private outShape: number[] | undefined;
  private perExample: number | undefined;
  /** the prediction's own run, when it ran alone (else it rode in the first batch) */
  predictionMs: number | undefined;
  /** the most evaluations the chosen plan spends, the prediction included */
  private planned: number;
  private done = 0;
  evaluationMs = 0;
  /** this request's own dearest per-example cost: of a batch of 2 or more, or of any run unbatched */
  private measured: number | undefined;
  /** the largest batch `measured` comes from */
  private measuredAt = 1;
  /** this request's run of one item alone (the prediction, or a probe) */
  private single: number | undefined;
  /** whether every run holds one example (the session couples a batch's examples, or cannot batch) */
  private perItem: boolean;
  /** items of each model run, in order */
  readonly runs: number[] = [];
  private readonly allowedMs: number;
  /** the session's learnt cost for this shape, trusted once the session is known independent */
  private readonly learnt: { ms: number; at: number } | undefined;

  constructor(
    private readonly deps: ExplainDeps,
    private readonly loaded: LoadedModel,
    private readonly params: ExplainParameters,
    private readonly plan: ExamplePlan,
    private readonly started: number,
    private readonly endsAt: number,
  ) {
    this.allowedMs = endsAt - started;
    this.planned = params.budget;
    const coupling = plan.batchable ? couplingOf(loaded, plan.outputName) : undefined;
    this.learnt =
      plan.batchable && coupling === 'independent' ? learntCost(loaded, plan.shapeKey) : undefined;
    this.perItem = coupling === 'coupled';
  }

  /** ms left until the explanation's end */
  private timeLeft(): number {
    return this.endsAt - this.deps.now();
  }

  /** ms since the explanation started */
  private elapsed(): number {
    return this.deps.now() - this.started;
  }

  /**
   * Per-example ms assumed for the next batch, and where the figure comes from: this request's
   * batches (or unbatched runs), its one lone run scaled for batching, or the session's learnt cost.
   */
  private estimate(size = 1): { ms: number; from: 'measured' | 'single' | 'learnt' } | undefined {
    const { measured, single, learnt } = this;
    if (measured !== undefined) {
      return {
        ms: this.perItem ? measured : scaledCost(measured, this.measuredAt, size),
        from: 'measured',
      };
    }
    if (single !== undefined) {
      return this.plan.batchable && !this.perItem
        ? { ms: scaledCost(single * BATCH_PENALTY, 1, size), from: 'single' }
        : { ms: single, from: 'measured' };
    }
    return learnt === undefined
      ? undefined
      : { ms: scaledCost(learnt.ms, learnt.at, size), from: 'learnt' };
  }

  /** what the rest of the plan costs at the batches it will run in */
  private restMs(): number {
    const rest = Math.max(0, this.planned - this.done);
    return rest * (this.estimate(Math.min(this.plan.batchSize, rest))?.ms ?? 0);
  }

  /** whether the method can plan this input within `budget` evaluations, 2 at least */
  private fitsBudget(budget: number): boolean {
    try {
      planExplanation(this.plan.inputs, {
        method: this.params.method,
        budget,
        seed: this.params.seed,
        batchSize: 1,
        ...this.plan.shape,
      });
      return budget >= 2;
    } catch {
      return false;
    }
  }

  /** the refusal (413) when the explanation's other evaluations, at `ms` each, do not fit what is left */
  private tooSlow(ms: number): ExplanationTooCostlyError {
    const { params, allowedMs, planned } = this;
    const affordable = Math.max(
      0,
      Math.floor((ADVICE_SHARE * (allowedMs - this.elapsed())) / Math.max(ms, 1e-3)) + this.done,
    );
    const fits = this.fitsBudget(affordable);
    const advice = fits
      ? `send parameters.budget of at most ${Math.min(params.budget - 1, affordable)}, or a larger window`
      : 'no budget this input can be explained with at that cost fits: send a larger window ' +
        `(fewer players)${params.method === 'kernel-shap' ? ', method "occlusion" with a window' : ' or a larger stride'}, or a smaller input`;
    return new ExplanationTooCostlyError(
      `this explanation needs about ${planned} model evaluations at ~${ms.toFixed(2)} ms each, ` +
        `more than the ${Math.max(0, Math.round(allowedMs))} ms this invocation can give it; ${advice}`,
      { details: { affordableBudget: fits ? affordable : 0, evaluationMs: ms } },
    );
  }

  /** Told the chosen plan's evaluations, the prediction included. */
  onPlan(evaluations: number): void {
    this.planned = evaluations;
  }

  /** Items in the next run: a probe until this request has timed a batch, then as many as fit. */
  nextBatch(calls: number, left: number): number {
    const { learnt, plan } = this;
    const base = this.estimate();
    if (base === undefined) return 1;
    const timed = base.from === 'measured';
    // a first batch sized from the learnt cost grows no further than GROWTH × the batch it came from
    const previous =
      calls === 0
        ? base.from === 'learnt' && learnt !== undefined
          ? learnt.at * GROWTH
          : Number.POSITIVE_INFINITY
        : (this.runs.at(-1) ?? 1) * GROWTH;
    let fit = Math.min(left, previous, plan.batchSize);
    const share = (timed ? BATCH_SHARE : PROBE_SHARE) * this.timeLeft();
    while (fit > 1 && fit * (this.estimate(fit)?.ms ?? 0) > share) fit = Math.floor(fit / 2);
    // a probe holds 2 examples when it can, so what a batch costs gets measured at all; a learnt
    // cost another input may have inflated shrinks the probe to x alone rather than refusing
    const pair = this.estimate(2)?.ms ?? base.ms;
    const floor = timed || (base.from === 'learnt' && 2 * pair > this.timeLeft()) ? 1 : 2;
    return Math.min(left, previous, plan.batchSize, Math.max(floor, fit));
  }

  /** The target element's answer for each item of a batch (the method's evaluation of f). */
  async evaluate(batch: Float64Array[][]): Promise<Float64Array> {
    this.checkTime(batch.length);
    const first = this.chosen === undefined;
    const runStarted = this.deps.now();
    const values = await this.run(
      batch,
      first
        ? batch.length === 1
          ? 'the request'
          : 'the request or a perturbed copy'
        : 'a perturbed input',
    );
    const ms = this.deps.now() - runStarted;
    this.done += batch.length;
    this.learnTiming(batch.length, ms);
    const each = this.perExample ?? 1;
    // the first item of the first batch is x itself: its answer is the prediction
    this.chosen ??= targetOf(
      this.params,
      this.plan.outputName,
      firstRow(values, each),
      this.outShape ?? [each],
    );
    if (first && batch.length === 1) {
      this.predictionMs = ms;
      this.alone = firstRow(values, each);
    } else {
      this.evaluationMs += ms;
    }
    const target = this.chosen.target;
    const answers = new Float64Array(batch.length);
    for (let b = 0; b < batch.length; b++) answers[b] = values[b * each + target] ?? Number.NaN;
    return answers;
  }

  /**
   * Refuses a batch that would overrun the time: timed by this request, the rest of the plan must
   * fit; scaled from its lone run, this batch must; a learnt figure never refuses by itself
   * (another client's input may have set it).
   */
  private checkTime(size: number): void {
    const est = this.estimate();
    if (est?.from === 'measured' && this.elapsed() + this.restMs() > this.allowedMs) {
      throw this.tooSlow(
        this.estimate(Math.min(this.plan.batchSize, this.planned - this.done))?.ms ?? est.ms,
      );
    }
    const batchEst = this.estimate(size);
    if (est?.from === 'single' && batchEst !== undefined) {
      if (this.elapsed() + size * batchEst.ms > this.allowedMs) throw this.tooSlow(batchEst.ms);
    }
  }

  /** Keeps a batched run's time: per example of a batch of 2 or more (learnt by the session), or of x alone. */
  private learnTiming(size: number, ms: number): void {
    if (!this.plan.batchable || this.perItem) return;
    if (size < 2) {
      this.single = Math.max(this.single ?? 0, ms);
      return;
    }
    const perExampleMs = ms / size;
    this.measured =
      size > this.measuredAt ? perExampleMs : Math.max(this.measured ?? 0, perExampleMs);
    this.measuredAt = Math.max(this.measuredAt, size);
    // learnt at once, so a refused explanation teaches the next one its cost too
    if (couplingOf(this.loaded, this.plan.outputName) === 'independent') {
      learnCost(this.loaded, this.plan.shapeKey, perExampleMs, size);
    }
  }

  /** The answers of one batch, `perExample` values per item, batched when the model can be. */
  private async run(batch: Float64Array[][], what: string): Promise<ArrayLike<number>> {
    if (this.plan.batchable && !this.perItem) {
      const values = await this.runBatched(batch, what);
      if (values !== undefined) return values;
    }
    return this.runEach(batch, what);
  }

  /**
   * A batch's answers from one model run, or undefined (and every later run per item) when the
   * session couples a batch's examples or the answers cannot be read back per example.
   */
  private async runBatched(
    batch: Float64Array[][],
    what: string,
  ): Promise<ArrayLike<number> | undefined> {
    // the session's first batch after x ran alone carries x again at its head, to learn
    // whether an example's answer depends on its batch
    const check =
      this.alone !== undefined && couplingOf(this.loaded, this.plan.outputName) === undefined;
    const items = check ? [this.plan.inputs.map((input) => input.x), ...batch] : batch;
    const out = await this.plan.runOutput(this.plan.feedsOf(items), what);
    let values = asNumbers(out.data);
    const each = this.perExample ?? values.length / items.length;
    if (
      check &&
      this.alone !== undefined &&
      out.shape[0] === items.length &&
      Number.isInteger(each)
    ) {
      values = this.checkCoupling(this.alone, values, each, batch);
    }
    // an output whose first dim does not follow the inputs' (a broadcast, a reduction):
    // batching cannot be read back, so this explanation runs one example at a time
    if (
      !this.perItem &&
      out.shape[0] === items.length &&
      Number.isInteger(each) &&
      values.length === batch.length * each
    ) {
      this.outShape ??= out.shape.slice(1);
      this.perExample = each;
      this.runs.push(batch.length);
      return values;
    }
    this.perItem = true;
    return undefined;
  }

  /**
   * Compares x's answer at the head of a batch with x's alone and records whether the session
   * couples a batch's examples; independent, the batch's own answers (x's head dropped).
   */
  private checkCoupling(
    alone: Float64Array,
    values: ArrayLike<number>,
    each: number,
    batch: readonly Float64Array[][],
  ): ArrayLike<number> {
    const independent = sameAnswer(alone, firstRow(values, each));
    if (!independent) {
      recordCoupling(this.loaded, this.plan.outputName, 'coupled');
      this.perItem = true;
      return values;
    }
    // x beside copies of itself proves nothing: the next batch (or request) checks again
    const x = this.plan.inputs.map((input) => input.x);
    if (!onlyCopiesOf(x, batch)) recordCoupling(this.loaded, this.plan.outputName, 'independent');
    const rest = new Float64Array(batch.length * each);
    for (let i = 0; i < rest.length; i++) rest[i] = values[each + i] ?? Number.NaN;
    return rest;
  }

  /** A batch's answers from one model run per item, refused once the next item cannot fit. */
  private async runEach(batch: Float64Array[][], what: string): Promise<Float64Array> {
    let values = new Float64Array(0);
    for (let b = 0; b < batch.length; b++) {
      if (b > 0 && this.measured !== undefined && this.measured > this.timeLeft()) {
        throw this.tooSlow(this.measured);
      }
      const itemStarted = this.deps.now();
      const out = await this.plan.runOutput(this.plan.feedsOf([batch[b] ?? []]), what);
      const itemMs = this.deps.now() - itemStarted;
      this.measured = Math.max(this.measured ?? 0, itemMs);
      const data = numbersOf(out.data);
      const outShape = this.outShape ?? (this.plan.batchable ? out.shape.slice(1) : out.shape);
      this.outShape = outShape;
      const each = this.perExample ?? count(outShape);
      this.perExample = each;
      if (b === 0) values = new Float64Array(batch.length * each);
      values.set(data.subarray(0, each), b * each);
      this.runs.push(1);
    }
    return values;
  }
}

/** The first `each` values of a batch's answers: its first item's. */
const firstRow = (values: ArrayLike<number>, each: number): Float64Array =>
  Float64Array.from({ length: each }, (_, i) => values[i] ?? Number.NaN);

/** Refuses an explanation whose base value or attributions are not finite (a 400). */
const checkFinite = (explanation: Explanation, outputName: string): void => {
  const finite =
    Number.isFinite(explanation.baseValue) &&
    explanation.attributions.every((a) => a.every(Number.isFinite));
  if (!finite) {
    throw new ExplainParameterError(
      `output ${JSON.stringify(outputName)} is not finite at the baseline or at a perturbed copy ` +
        `(base value ${explanation.baseValue}), so it cannot be attributed: send a baseline ` +
        "(parameters.baseline) inside the range of the model's training data",
    );
  }
};

/**
 * Explains one example: builds the baseline, lets the method evaluate x and its perturbed copies,
 * batched along the batch dimension when the model has a dynamic one, picks the output element on
 * the prediction (the first item the model answers), and stops before the invocation's deadline.
 */
const explainExample = async (
  deps: ExplainDeps,
  loaded: LoadedModel,
  example: Example,
  params: ExplainParameters,
  endsAt: number,
): Promise<Explained> => {
  const started = deps.now();
  const plan = await planExample(deps, loaded, example, params);
  const runs = new ExampleRuns(deps, loaded, params, plan, started, endsAt);
  const explanation = await explain(plan.inputs, undefined, (batch) => runs.evaluate(batch), {
    method: params.method,
    budget: params.budget,
    seed: params.seed,
    batchSize: plan.batchSize,
    nextBatch: (calls, left) => runs.nextBatch(calls, left),
    ...plan.shape,
    onPlan: (evaluations) => runs.onPlan(evaluations),
  });
  checkFinite(explanation, plan.outputName);
  const { target, prediction } = runs.chosen ?? { target: 0, prediction: explanation.prediction };
  return {
    output: plan.outputName,
    target,
    prediction,
    baseline: plan.base.baseline,
    ...(plan.base.baselineNote === undefined ? {} : { baselineNote: plan.base.baselineNote }),
    explanation,
    shapes: example.inputs.map((t) => t.shape),
    ...(runs.predictionMs === undefined ? {} : { predictionMs: runs.predictionMs }),
    evaluationMs: runs.evaluationMs,
    runs: runs.runs,
  };
};

/** FP32 values as JSON numbers. */
const fround = (values: Float64Array): number[] => Array.from(values, (v) => Math.fround(v));

/** A number as `JSON.stringify` writes it: a non-finite one is null. */
const jsonNumber = (v: number): string => (Number.isFinite(v) ? String(v) : 'null');

/**
 * An explanation's fields as JSON members, written by hand: for a model that runs in
 * microseconds, `JSON.stringify` of the spread objects was a sizeable part of the explanation's
 * own cost (bench/explain.ts).
 */
const summaryJson = (e: Explained, params: ExplainParameters): string =>
  `"method":"${e.explanation.method}","mode":"${e.explanation.mode}"` +
  (params.method === 'auto' ? ',"requested_method":"auto"' : '') +
  `,"players":${e.explanation.players},"grouping":"${e.explanation.grouping}"` +
  `,"output":${JSON.stringify(e.output)},"target":${e.target}` +
  `,"prediction":${jsonNumber(e.prediction)}` +
  `,"base_value":${jsonNumber(e.explanation.baseValue)},"baseline":"${e.baseline}"` +
  (e.baselineNote === undefined ? '' : `,"baseline_note":${JSON.stringify(e.baselineNote)}`) +
  `,"evaluations":${e.explanation.evaluations},"budget":${params.budget}`;

/** Attributions as a flat JSON array of FP32 values. */
const fp32Json = (values: Float64Array): string => {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) parts[i] = jsonNumber(Math.fround(values[i] ?? 0));
  return `[${parts.join(',')}]`;
};

/** The `timing` member: where the time went, and the batch plan the model ran. */
const timingJson = (
  deps: ExplainDeps,
  ex: Exchange,
  started: number,
  explained: readonly Explained[],
): string => {
  let predictionMs: number | undefined;
  let evaluationMs = 0;
  const batches: number[] = [];
  for (const e of explained) {
    if (e.predictionMs !== undefined) predictionMs = (predictionMs ?? 0) + e.predictionMs;
    evaluationMs += e.evaluationMs;
    for (const b of e.runs) batches.push(b);
  }
  const load = ex.loaded?.load;
  return (
    `{"total_ms":${round(deps.now() - started)}` +
    (load === undefined ? '' : `,"model_load_ms":${round(load.totalMs)}`) +
    (predictionMs === undefined ? '' : `,"prediction_ms":${round(predictionMs)}`) +
    `,"evaluation_ms":${round(evaluationMs)},"batches":[${batches.join(',')}]}`
  );
};

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

const record = (ex: Exchange, explained: readonly Explained[]): void => {
  const [first] = explained;
  if (first === undefined) return;
  ex.explain = {
    evaluations: explained.reduce((s, e) => s + e.explanation.evaluations, 0),
    method: first.explanation.method,
  };
};

/** The `parameters` of a V1 body the protocol's decoder has already checked is JSON. */
const parametersOf = (json: Uint8Array): unknown => {
  const parsed: unknown = JSON.parse(utf8.decode(json));
  return typeof parsed === 'object' && parsed !== null && 'parameters' in parsed
    ? parsed.parameters
    : undefined;
};

const utf8 = new TextDecoder();

/** `POST /v2/models/{m}[/versions/{v}]/explain`: a V2 infer request plus explain parameters. */
export const explainV2 = async (
  deps: ExplainDeps,
  request: HttpRequest,
  ex: Exchange,
  model: string,
  version?: number,
): Promise<HttpResponse> => {
  if (!deps.explain.enabled) throw new ExplainDisabledError();
  const started = deps.now();
  const { loaded, decoded } = await acquireDecoded(deps, request, ex, model, version);
  const params = parseExplainParameters(decoded.parameters, deps.explain);
  const endsAt = started + timeAllowed(deps, request);
  const explained = await explainExample(deps, loaded, decoded, params, endsAt);
  record(ex, [explained]);
  const attributions = explained.explanation.attributions.map(
    (values, k) =>
      `{"name":${JSON.stringify(decoded.inputs[k]?.name)},"datatype":"FP32",` +
      `"shape":[${explained.shapes[k]?.join(',')}],"data":${fp32Json(values)}}`,
  );
  const json =
    `{"model_name":${JSON.stringify(loaded.model)},"model_version":"${loaded.version}"` +
    (decoded.id === undefined ? '' : `,"id":${JSON.stringify(decoded.id)}`) +
    `,${summaryJson(explained, params)},"attributions":[${attributions.join(',')}]` +
    `,"timing":${timingJson(deps, ex, started, [explained])}}`;
  checkResponseSize(json, deps.limits);
  return { status: 200, headers: { 'content-type': JSON_CONTENT_TYPE }, body: json };
};

/** Nests a flat row-major array to `shape`, as V1 rows are written. */
const nest = (values: readonly number[], shape: readonly number[]): unknown => {
  let at = 0;
  const walk = (d: number): unknown => {
    if (d === shape.length) return values[at++];
    return Array.from({ length: shape[d] ?? 0 }, () => walk(d + 1));
  };
  return walk(0);
};

/** `POST /v1/models/{m}:explain`: `{"instances": [...]}` → `{"explanations": [...]}`, one per row. */
export const explainV1 = async (
  deps: ExplainDeps,
  request: HttpRequest,
  ex: Exchange,
  model: string,
): Promise<HttpResponse> => {
  if (!deps.explain.enabled) throw new ExplainDisabledError();
  const started = deps.now();
  const body = requireBody(request);
  checkInferMediaType(request, false, false);
  const loaded = await deps.provider.acquire(model);
  ex.loaded = loaded;
  const stacked = decodeV1Request(body, loaded, explainPath(model), decodeLimits(deps, loaded));
  const params = parseExplainParameters(parametersOf(body), deps.explain);
  const endsAt = started + timeAllowed(deps, request);
  const rows = stacked.shape[0] ?? 0;
  const rowShape = stacked.shape.slice(1);
  const rowSize = count(rowShape);
  const explained: Explained[] = [];
  let slowestRow = 0;
  for (let r = 0; r < rows; r++) {
    // all rows share one allowance: once a row is timed, the rest must fit, else refuse now
    const projected = deps.now() - started + (rows - r) * slowestRow;
    if (r > 0 && projected > endsAt - started) {
      const fits = Math.max(1, Math.floor((ADVICE_SHARE * (endsAt - started)) / slowestRow));
      throw new ExplanationTooCostlyError(
        `the ${rows} instances of this request are explained in turn within one allowance of ` +
          `${Math.round(endsAt - started)} ms, and each takes about ${Math.round(slowestRow)} ms; ` +
          `send at most ${fits} instances per request`,
        { details: { instances: rows, fits } },
      );
    }
    const rowStarted = deps.now();
    const row: DecodedTensor = {
      name: stacked.name,
      datatype: stacked.datatype,
      shape: [1, ...rowShape],
      data: (stacked.data as NumericData).slice(r * rowSize, (r + 1) * rowSize),
    };
    // one time allowance for every row: each row's explanation ends by the same deadline
    explained.push(await explainExample(deps, loaded, { inputs: [row] }, params, endsAt));
    slowestRow = Math.max(slowestRow, deps.now() - rowStarted);
  }
  record(ex, explained);
  const explanations = explained.map(
    (e) =>
      `{${summaryJson(e, params)},"attributions":` +
      `${JSON.stringify(nest(fround(e.explanation.attributions[0] ?? new Float64Array(0)), rowShape))}}`,
  );
  const json =
    `{"explanations":[${explanations.join(',')}]` +
    `,"model_name":${JSON.stringify(loaded.model)},"model_version":"${loaded.version}"` +
    `,"timing":${timingJson(deps, ex, started, explained)}}`;
  checkResponseSize(json, deps.limits);
  return { status: 200, headers: { 'content-type': JSON_CONTENT_TYPE }, body: json };
};
