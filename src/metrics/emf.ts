/** One metric document parsed from an EMF log line. */
export interface EmfRecord {
  namespace: string;
  timestamp: number;
  /** dimension sets, each a list of dimension names */
  dimensionSets: string[][];
  /** dimension name → value */
  dimensions: Record<string, string>;
  /** metric name → values (Powertools writes an array when a metric was added twice) */
  values: Record<string, number[]>;
  units: Record<string, string>;
}

type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses a log line as CloudWatch Embedded Metric Format, returning one record per metric
 * directive, or an empty list when the line is not EMF (ordinary log lines are skipped).
 */
export const parseEmfLine = (line: string): EmfRecord[] => {
  if (!line.includes('"_aws"')) return [];
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return [];
  }
  if (!isObject(doc) || !isObject(doc._aws) || !Array.isArray(doc._aws.CloudWatchMetrics))
    return [];
  const timestamp = typeof doc._aws.Timestamp === 'number' ? doc._aws.Timestamp : 0;
  const records: EmfRecord[] = [];
  for (const directive of doc._aws.CloudWatchMetrics) {
    if (!isObject(directive) || typeof directive.Namespace !== 'string') continue;
    const dimensionSets = Array.isArray(directive.Dimensions)
      ? directive.Dimensions.filter(Array.isArray).map((set) => set.map(String))
      : [];
    const dimensions: Record<string, string> = {};
    for (const name of dimensionSets.flat()) {
      const value = doc[name];
      if (typeof value === 'string') dimensions[name] = value;
    }
    const values: Record<string, number[]> = {};
    const units: Record<string, string> = {};
    for (const metric of Array.isArray(directive.Metrics) ? directive.Metrics : []) {
      if (!isObject(metric) || typeof metric.Name !== 'string') continue;
      const value = doc[metric.Name];
      const list = (Array.isArray(value) ? value : [value]).filter(
        (v): v is number => typeof v === 'number',
      );
      values[metric.Name] = list;
      units[metric.Name] = typeof metric.Unit === 'string' ? metric.Unit : 'None';
    }
    records.push({
      namespace: directive.Namespace,
      timestamp,
      dimensionSets,
      dimensions,
      values,
      units,
    });
  }
  return records;
};
