export { fmtBytes } from './format.ts';
export { gaussian, mulberry32 } from './random.ts';
