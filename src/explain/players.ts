import { ExplainParameterError } from './errors.ts';
import type { ExplainInput } from './types.ts';

/**
 * Who each element belongs to: KernelSHAP's players are single elements or contiguous windows of
 * them, so an image or a sequence becomes a number of players the budget can afford.
 */
export interface Players {
  count: number;
  /** per input, the player of each element */
  owner: Int32Array[];
  /** elements per player, to spread a player's value over them */
  sizes: Float64Array;
}

const elementsOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * A window given for fewer dims than the input covers its trailing dims (an 8×8 window on a
 * [3, 32, 32] image covers 8×8 of each channel). Every size must fit its dim.
 */
export const resolveWindow = (
  name: string,
  shape: readonly number[],
  window: readonly number[],
  what = 'window',
): number[] => {
  if (window.length === 0 || window.length > shape.length) {
    throw new ExplainParameterError(
      `parameters.${what} for input ${JSON.stringify(name)} has ${window.length} sizes but the ` +
        `input's example has ${shape.length} dims [${shape.join(', ')}]; send 1 to ${shape.length} sizes ` +
        '(the trailing dims), e.g. [8, 8] on an image',
    );
  }
  const full = [...shape.map(() => 1), ...window].slice(window.length);
  full.forEach((size, d) => {
    const dim = shape[d] ?? 0;
    if (!Number.isSafeInteger(size) || size < 1 || size > dim) {
      throw new ExplainParameterError(
        `parameters.${what} [${window.join(', ')}] does not fit input ${JSON.stringify(name)} of ` +
          `example shape [${shape.join(', ')}]: each size must be an integer from 1 to its dim`,
      );
    }
  });
  return full;
};

/** Row-major coordinates → the tile they fall in, for tiles of `window` over `shape`. */
const tileOwners = (shape: readonly number[], window: readonly number[], first: number) => {
  const tiles = shape.map((dim, d) => Math.ceil(dim / (window[d] ?? 1)));
  const owner = new Int32Array(elementsOf(shape));
  const coord = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < owner.length; i++) {
    let tile = 0;
    for (let d = 0; d < shape.length; d++) {
      tile = tile * (tiles[d] ?? 1) + Math.floor((coord[d] ?? 0) / (window[d] ?? 1));
    }
    owner[i] = first + tile;
    for (let d = shape.length - 1; d >= 0; d--) {
      coord[d] = (coord[d] ?? 0) + 1;
      if ((coord[d] ?? 0) < (shape[d] ?? 1)) break;
      coord[d] = 0;
    }
  }
  return { owner, count: elementsOf(tiles) };
};

const withSizes = (owner: Int32Array[], count: number): Players => {
  const sizes = new Float64Array(count);
  for (const o of owner) for (const p of o) sizes[p] = (sizes[p] ?? 0) + 1;
  return { count, owner, sizes };
};

/** One player per element of every input. */
export const elementPlayers = (inputs: readonly ExplainInput[]): Players => {
  let next = 0;
  const owner = inputs.map((input) => {
    const o = new Int32Array(input.x.length);
    for (let i = 0; i < o.length; i++) o[i] = next++;
    return o;
  });
  return withSizes(owner, next);
};

/** One player per tile of each input's window (an input without a window: one per element). */
export const windowPlayers = (
  inputs: readonly ExplainInput[],
  windows: readonly (readonly number[] | undefined)[],
): Players => {
  let next = 0;
  const owner = inputs.map((input, k) => {
    const given = windows[k];
    const window = given ? resolveWindow(input.name, input.shape, given) : input.shape.map(() => 1);
    const tiles = tileOwners(input.shape, window, next);
    next += tiles.count;
    return tiles.owner;
  });
  return withSizes(owner, next);
};

/**
 * About `target` players in contiguous runs of row-major elements, shared among inputs by size
 * (each input at least one): the grouping `auto` uses when no window was sent.
 */
export const autoPlayers = (inputs: readonly ExplainInput[], target: number): Players => {
  const total = inputs.reduce((sum, input) => sum + input.x.length, 0);
  let next = 0;
  const owner = inputs.map((input) => {
    const n = input.x.length;
    const groups = Math.max(1, Math.min(n, Math.round((target * n) / Math.max(1, total))));
    const o = new Int32Array(n);
    for (let i = 0; i < n; i++) o[i] = next + Math.floor((i * groups) / n);
    next += groups;
    return o;
  });
  return withSizes(owner, next);
};

/** The inputs with the players in `mask` taken from x and the others from the baseline. */
export const compose = (
  inputs: readonly ExplainInput[],
  players: Players,
  mask: Uint8Array,
): Float64Array[] =>
  inputs.map((input, k) => {
    const owner = players.owner[k] ?? new Int32Array(0);
    const out = new Float64Array(input.x.length);
    for (let i = 0; i < out.length; i++) {
      out[i] = mask[owner[i] ?? 0] ? (input.x[i] ?? 0) : (input.baseline[i] ?? 0);
    }
    return out;
  });

/** Spreads each player's value evenly over its elements, shaped like the inputs. */
export const spread = (
  inputs: readonly ExplainInput[],
  players: Players,
  values: Float64Array,
): Float64Array[] =>
  inputs.map((input, k) => {
    const owner = players.owner[k] ?? new Int32Array(0);
    const out = new Float64Array(input.x.length);
    for (let i = 0; i < out.length; i++) {
      const p = owner[i] ?? 0;
      out[i] = (values[p] ?? 0) / (players.sizes[p] ?? 1);
    }
    return out;
  });

/** Start offsets of a window sliding over one dim: every stride, and the last one flush. */
const starts = (dim: number, size: number, stride: number): number[] => {
  const out: number[] = [];
  for (let s = 0; s + size <= dim; s += stride) out.push(s);
  if (out.at(-1) !== dim - size) out.push(dim - size);
  return out;
};

/** Every placement of a window over an input, each as the flat indices it covers. */
export const slidingWindows = (
  shape: readonly number[],
  window: readonly number[],
  stride: readonly number[],
): Int32Array[] => {
  const perDim = shape.map((dim, d) => starts(dim, window[d] ?? 1, stride[d] ?? 1));
  const strides = shape.map((_, d) => elementsOf(shape.slice(d + 1)));
  const out: Int32Array[] = [];
  const size = elementsOf(window);
  const place = (d: number, origin: number[]): void => {
    if (d === shape.length) {
      const indices = new Int32Array(size);
      const at = new Array<number>(shape.length).fill(0);
      for (let i = 0; i < size; i++) {
        let flat = 0;
        for (let e = 0; e < shape.length; e++)
          flat += ((origin[e] ?? 0) + (at[e] ?? 0)) * (strides[e] ?? 1);
        indices[i] = flat;
        for (let e = shape.length - 1; e >= 0; e--) {
          at[e] = (at[e] ?? 0) + 1;
          if ((at[e] ?? 0) < (window[e] ?? 1)) break;
          at[e] = 0;
        }
      }
      out.push(indices);
      return;
    }
    for (const s of perDim[d] ?? []) place(d + 1, [...origin, s]);
  };
  place(0, []);
  return out;
};
