import fc from 'fast-check';

// The property tests inside `npm test` replay one seed, so a CI run is repeatable and a red run
// can be reproduced; `npx tsx bench/fuzz.ts` explores fresh seeds at scale. FC_SEED=<n> picks
// another seed here (fast-check prints the seed and path of any failure).
const seed = Number(process.env.FC_SEED ?? 20261129);
fc.configureGlobal({ seed: Number.isSafeInteger(seed) ? seed : 20261129 });
