/**
 * Shapley values of a set function `v` over `P` players, where v(S) is the model on the example
 * with the players in S taken from x and the rest from the baseline. Two ways, one answer:
 * every coalition when 2^P fits the budget (the Shapley formula, exact), else KernelSHAP's
 * weighted regression over sampled coalitions with the efficiency constraint built in, so the
 * values always sum to v(all) − v(none).
 */

const maskOfBits = (bits: number, players: number): Uint8Array => {
  const mask = new Uint8Array(players);
  for (let i = 0; i < players; i++) mask[i] = (bits >>> i) & 1;
  return mask;
};

const popcount = (bits: number): number => {
  let n = 0;
  for (let b = bits; b !== 0; b &= b - 1) n++;
  return n;
};

/** Evaluations exact enumeration needs beyond v(all): every other coalition. */
export const exactCost = (players: number): number => 2 ** players - 1;

/** Exact enumeration's masks by player count, built once: they depend on nothing else. */
const coalitionsByPlayers: (readonly Uint8Array[] | undefined)[] = [];

/**
 * Every coalition but the full one, as masks in the order of their bits (0 … 2^P − 2). Shared
 * between explanations (read them, never write them).
 */
export const exactCoalitions = (players: number): readonly Uint8Array[] => {
  const known = coalitionsByPlayers[players];
  if (known !== undefined) return known;
  const masks = new Array<Uint8Array>(exactCost(players));
  for (let bits = 0; bits < masks.length; bits++) masks[bits] = maskOfBits(bits, players);
  // up to 2^12 masks (48 KiB) are kept; larger enumerations are rare and built each time
  if (players <= 12) coalitionsByPlayers[players] = masks;
  return masks;
};

/**
 * Exact Shapley values from every coalition's value: `outputs` holds v of the coalitions of
 * `exactCoalitions` (bits 0 … 2^P − 2) and `full` is v(all), known from the prediction. Returns
 * the values and v(none).
 */
export const exactShapley = (
  players: number,
  outputs: ArrayLike<number>,
  full: number,
): { values: Float64Array; empty: number } => {
  const count = 2 ** players;
  const v = new Float64Array(count);
  for (let bits = 0; bits < count - 1; bits++) v[bits] = outputs[bits] ?? Number.NaN;
  v[count - 1] = full;
  // weight of a coalition of size s that lacks player i: s!(P−s−1)!/P!
  const weight = new Float64Array(players);
  for (let s = 0; s < players; s++) {
    let w = 1 / players;
    for (let k = 1; k <= s; k++) w *= k / (players - k);
    weight[s] = w;
  }
  const values = new Float64Array(players);
  for (let bits = 0; bits < count; bits++) {
    const s = popcount(bits);
    for (let i = 0; i < players; i++) {
      const bit = 1 << i;
      if (bits & bit) continue;
      values[i] = (values[i] ?? 0) + (weight[s] ?? 0) * ((v[bits | bit] ?? 0) - (v[bits] ?? 0));
    }
  }
  return { values, empty: v[0] ?? 0 };
};

const binomial = (n: number, k: number): number => {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
};

/** Every subset of {0..n-1} of size k, as sorted index lists. */
function* combinations(n: number, k: number): Generator<number[]> {
  const idx = Array.from({ length: k }, (_, i) => i);
  while (true) {
    yield [...idx];
    let i = k - 1;
    while (i >= 0 && idx[i] === n - k + i) i--;
    if (i < 0) return;
    idx[i] = (idx[i] ?? 0) + 1;
    for (let j = i + 1; j < k; j++) idx[j] = (idx[j - 1] ?? 0) + 1;
  }
}

interface Coalitions {
  masks: Uint8Array[];
  weights: number[];
}

/**
 * KernelSHAP's coalitions for `samples` evaluations: whole subset sizes while they fit (sizes 1
 * and P−1 first, where the Shapley kernel puts most weight), each with its exact kernel weight,
 * then sizes drawn from the kernel for the rest, each coalition with its complement; a coalition
 * drawn twice is evaluated once and weighs twice.
 */
export const kernelCoalitions = (
  players: number,
  samples: number,
  random: () => number,
): Coalitions => {
  const masks: Uint8Array[] = [];
  const weights: number[] = [];
  const sizes = Math.ceil((players - 1) / 2);
  const paired = Math.floor((players - 1) / 2);
  const kernel = Array.from({ length: sizes }, (_, i) => {
    const s = i + 1;
    return ((players - 1) / (s * (players - s))) * (s <= paired ? 2 : 1);
  });
  const norm = kernel.reduce((a, b) => a + b, 0);
  for (let i = 0; i < sizes; i++) kernel[i] = (kernel[i] ?? 0) / norm;

  let left = samples;
  let fullSizes = 0;
  const remaining = [...kernel];
  for (let s = 1; s <= sizes; s++) {
    const isPaired = s <= paired;
    const subsets = binomial(players, s) * (isPaired ? 2 : 1);
    if ((left * (remaining[s - 1] ?? 0)) / subsets < 1 - 1e-8) break;
    fullSizes++;
    left -= subsets;
    const share = remaining[s - 1] ?? 0;
    if (share < 1) for (let i = 0; i < sizes; i++) remaining[i] = (remaining[i] ?? 0) / (1 - share);
    const w = (kernel[s - 1] ?? 0) / binomial(players, s) / (isPaired ? 2 : 1);
    for (const subset of combinations(players, s)) {
      const mask = new Uint8Array(players);
      for (const i of subset) mask[i] = 1;
      masks.push(mask);
      weights.push(w);
      if (isPaired) {
        masks.push(mask.map((b) => 1 - b));
        weights.push(w);
      }
    }
  }
  const fixed = masks.length;
  if (fullSizes < sizes && left > 0) {
    // paired sizes draw two coalitions at once: halve their chance so sizes keep the kernel's odds
    const odds = kernel.map((w, i) => (i < paired ? w / 2 : w)).slice(fullSizes);
    const oddsSum = odds.reduce((a, b) => a + b, 0);
    const seen = new Map<string, number>();
    const add = (mask: Uint8Array): void => {
      const key = mask.join('');
      const at = seen.get(key);
      if (at !== undefined) {
        weights[at] = (weights[at] ?? 0) + 1;
        return;
      }
      seen.set(key, masks.length);
      masks.push(mask);
      weights.push(1);
    };
    const target = fixed + left;
    for (let tries = 0; masks.length < target && tries < 8 * left; tries++) {
      let r = random() * oddsSum;
      let pick = 0;
      while (pick < odds.length - 1 && r >= (odds[pick] ?? 0)) r -= odds[pick++] ?? 0;
      const s = fullSizes + pick + 1;
      const order = Array.from({ length: players }, (_, i) => i);
      for (let i = 0; i < s; i++) {
        const j = i + Math.floor(random() * (players - i));
        [order[i], order[j]] = [order[j] ?? 0, order[i] ?? 0];
      }
      const mask = new Uint8Array(players);
      for (let i = 0; i < s; i++) mask[order[i] ?? 0] = 1;
      add(mask);
      if (s <= paired && masks.length < target) add(mask.map((b) => 1 - b));
    }
    const leftWeight = kernel.slice(fullSizes).reduce((a, b) => a + b, 0);
    const drawn = weights.slice(fixed).reduce((a, b) => a + b, 0);
    for (let i = fixed; i < weights.length; i++) {
      weights[i] = ((weights[i] ?? 0) * leftWeight) / drawn;
    }
  }
  return { masks, weights };
};

/** Solves A·x = b in place (Gaussian elimination, partial pivoting); A is n×n, row-major. */
const solve = (a: Float64Array, b: Float64Array, n: number): Float64Array => {
  let scale = 0;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(a[i * n + i] ?? 0));
  // a whisker of ridge keeps a rank-deficient design (too few distinct coalitions) solvable
  const ridge = Math.max(scale, 1e-300) * 1e-12;
  for (let i = 0; i < n; i++) a[i * n + i] = (a[i * n + i] ?? 0) + ridge;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(a[r * n + col] ?? 0) > Math.abs(a[pivot * n + col] ?? 0)) pivot = r;
    }
    if (pivot !== col) {
      for (let c = 0; c < n; c++) {
        const t = a[col * n + c] ?? 0;
        a[col * n + c] = a[pivot * n + c] ?? 0;
        a[pivot * n + c] = t;
      }
      const t = b[col] ?? 0;
      b[col] = b[pivot] ?? 0;
      b[pivot] = t;
    }
    const p = a[col * n + col] ?? 0;
    if (p === 0) continue;
    for (let r = col + 1; r < n; r++) {
      const f = (a[r * n + col] ?? 0) / p;
      if (f === 0) continue;
      for (let c = col; c < n; c++) a[r * n + c] = (a[r * n + c] ?? 0) - f * (a[col * n + c] ?? 0);
      b[r] = (b[r] ?? 0) - f * (b[col] ?? 0);
    }
  }
  const x = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let sum = b[r] ?? 0;
    for (let c = r + 1; c < n; c++) sum -= (a[r * n + c] ?? 0) * (x[c] ?? 0);
    const p = a[r * n + r] ?? 0;
    x[r] = p === 0 ? 0 : sum / p;
  }
  return x;
};

/**
 * KernelSHAP by weighted least squares with the efficiency constraint: the last player's value
 * is eliminated as Δ − Σ others, so the values sum to v(all) − v(none) by construction.
 */
export const kernelRegression = (
  players: number,
  coalitions: Coalitions,
  outputs: ArrayLike<number>,
  empty: number,
  full: number,
): Float64Array => {
  const delta = full - empty;
  if (players === 1) return Float64Array.of(delta);
  const n = players - 1;
  const last = players - 1;
  const xtx = new Float64Array(n * n);
  const xty = new Float64Array(n);
  const row = new Float64Array(n);
  coalitions.masks.forEach((mask, k) => {
    const w = coalitions.weights[k] ?? 0;
    const zLast = mask[last] ?? 0;
    const y = (outputs[k] ?? 0) - empty - zLast * delta;
    for (let i = 0; i < n; i++) row[i] = (mask[i] ?? 0) - zLast;
    for (let i = 0; i < n; i++) {
      const ri = row[i] ?? 0;
      if (ri === 0) continue;
      xty[i] = (xty[i] ?? 0) + w * ri * y;
      for (let j = 0; j < n; j++) xtx[i * n + j] = (xtx[i * n + j] ?? 0) + w * ri * (row[j] ?? 0);
    }
  });
  const beta = solve(xtx, xty, n);
  const values = new Float64Array(players);
  values.set(beta);
  values[last] = delta - beta.reduce((a, b) => a + b, 0);
  return values;
};

/** The fewest coalitions (besides v(all) and v(none)) a sampled KernelSHAP run should have. */
export const minSampledCoalitions = (players: number): number => 2 * players;
