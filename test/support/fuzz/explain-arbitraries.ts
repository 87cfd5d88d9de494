import fc from 'fast-check';
import {
  dynamicDims,
  type FuzzRequest,
  hostileData,
  hostileLeaf,
  jsonContentType,
  jsonText,
  request,
  validJsonInput,
} from './arbitraries.ts';
import { FUZZ_MODELS, FUZZ_SIGNATURES } from './models.ts';

/*
 * Everything here is built on first use: `arbitraries.ts` mixes these requests into its own, so
 * the two modules import each other and nothing may be read while they load.
 */

/**
 * Explain parameters as a client writes them: valid values, values just past a bound (budget
 * over the cap, a target past the output, a window bigger than the input), and hostile leaves.
 */
const sizes = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
    fc.array(fc.integer({ min: -2, max: 1 << 20 }), { maxLength: 5 }),
    hostileLeaf,
  );

/** mostly a value that may well be accepted, sometimes a hostile one */
const mostly = <T>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<unknown>) =>
  fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: hostile, weight: 1 });

const parameters = (inputs: readonly string[], outputs: readonly string[]) =>
  fc.record(
    {
      method: mostly(fc.constantFrom('kernel-shap', 'occlusion', 'auto'), hostileLeaf),
      output: mostly(fc.constantFrom(...outputs), hostileLeaf),
      target: mostly(fc.integer({ min: 0, max: 3 }), fc.oneof(fc.constant(-1), hostileLeaf)),
      baseline: mostly(
        fc.constantFrom('samples-mean', 'zeros'),
        fc.oneof(
          fc.constant('ones'),
          fc.dictionary(
            fc.oneof(fc.constantFrom(...inputs), fc.string({ maxLength: 4 })),
            fc.oneof(
              fc.array(fc.oneof(fc.double(), fc.integer({ min: -3, max: 3 })), { maxLength: 6 }),
              hostileData,
            ),
            { maxKeys: 3 },
          ),
          hostileLeaf,
        ),
      ),
      window: mostly(
        fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 1, maxLength: 1 }),
        fc.oneof(sizes(), fc.dictionary(fc.constantFrom(...inputs), sizes(), { maxKeys: 2 })),
      ),
      stride: mostly(
        fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 1, maxLength: 1 }),
        sizes(),
      ),
      budget: mostly(
        fc.integer({ min: 2, max: 300 }),
        fc.oneof(fc.integer({ min: -1, max: 3000 }), hostileLeaf),
      ),
      seed: mostly(fc.nat(), hostileLeaf),
    },
    { requiredKeys: [] },
  );

/** A V2 explain request: valid inputs for a model, with fuzzed explain parameters. */
export const explainRequest = (): fc.Arbitrary<FuzzRequest> =>
  fc
    .tuple(fc.constantFrom(...FUZZ_MODELS), dynamicDims)
    .chain(([model, dynamic]) => {
      const { inputs, outputs } = FUZZ_SIGNATURES[model];
      return fc.record({
        model: fc.constant(model),
        // a batch of one, as explanations take, most of the time
        inputs: fc.tuple(...inputs.map((spec) => validJsonInput(spec, [1, ...dynamic.slice(1)]))),
        other: fc.tuple(...inputs.map((spec) => validJsonInput(spec, dynamic))),
        useOther: fc.boolean(),
        parameters: fc.oneof(
          {
            arbitrary: parameters(
              inputs.map((s) => s.name),
              outputs.map((o) => o.name),
            ),
            weight: 8,
          },
          { arbitrary: hostileLeaf, weight: 1 },
        ),
        pinned: fc.boolean(),
        contentType: jsonContentType,
      });
    })
    .map(
      (r): FuzzRequest => ({
        family: 'explain',
        request: request(
          'POST',
          r.pinned ? `/v2/models/${r.model}/versions/1/explain` : `/v2/models/${r.model}/explain`,
          { 'content-type': r.contentType },
          new TextEncoder().encode(
            jsonText({ inputs: r.useOther ? r.other : r.inputs, parameters: r.parameters }),
          ),
        ),
      }),
    );

/** A V1 explain request for the single-input model (and others, which refuse V1). */
export const explainV1Request = (): fc.Arbitrary<FuzzRequest> =>
  fc
    .record({
      model: fc.constantFrom(...FUZZ_MODELS),
      instances: fc.oneof(
        fc.array(fc.array(fc.double({ min: -10, max: 10 }), { minLength: 4, maxLength: 4 }), {
          maxLength: 3,
        }),
        hostileData,
      ),
      parameters: fc.option(parameters(['x'], ['y', 'total']), { nil: undefined }),
    })
    .map(
      (r): FuzzRequest => ({
        family: 'explain-v1',
        request: request(
          'POST',
          `/v1/models/${r.model}:explain`,
          { 'content-type': 'application/json' },
          new TextEncoder().encode(jsonText({ instances: r.instances, parameters: r.parameters })),
        ),
      }),
    );
