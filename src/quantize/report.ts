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
}
