/** What quantization did to a model and why its variant is or is not served (in the manifest). */
/** One entry of the quantization report. */
export interface QuantizedNodeReport {
  node: string;
  opType: string;
  action: 'quantized' | 'skipped';
  /** why it was skipped (too small, excluded by option, unsupported layout, ...) */
  reason?: string;
}

export interface QuantizationReport {
  scheme: string;
  /** `applied`: int8 variant written; `not-applied`: no variant (why in `reason`) */
  status: 'applied' | 'not-applied';
  reason?: string;
  nodes: QuantizedNodeReport[];
  nodesQuantized: number;
  nodesSkipped: number;
  sizeRatio?: number;
  latencyRatio?: number;
  accuracy?: { cosine: number; maxAbsError: number; top1Agreement?: number };
  /** why int8 is or is not served */
  decision?: string;
  quantizeMs?: number;
  /**
   * dynamic schemes with `signedShare`: how many weights are stored signed within ±64 (u8×s8
   * kernels), of how many quantized, and the share of weight elements they hold
   */
  signedWeights?: { weights: number; of: number; share: number };
  /** static schemes: how activation ranges were measured (`synthesized` samples calibrate weakly) */
  calibration?: {
    method: 'minmax' | 'percentile';
    samples: number;
    /** `sidecar`, or `synthesized` (inputs made up from the signature: a weak calibration) */
    source: string;
    /** activations quantized, of those planned; the others had a noise margin below the minimum */
    activations?: number;
    planned?: number;
    minNoiseMargin?: number;
  };
  /** the accuracy test the gate applied, from the upload's `maas-accuracy` (e.g. `cosine>=0.999`) */
  accuracyTest?: string;
  /** the other int8 schemes ingest tried on this upload, with the gate's verdict on each */
  alternatives?: {
    scheme: string;
    accepted: boolean;
    decision: string;
    sizeRatio?: number;
    latencyRatio?: number;
    cosine?: number;
    top1Agreement?: number;
  }[];
}
