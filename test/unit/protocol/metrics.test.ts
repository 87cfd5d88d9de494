import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DIMENSION_SETS,
  METRICS_NAMESPACE,
  PowertoolsMetricsSink,
  parseEmfLine,
} from '../../../src/metrics/index.ts';

describe('Powertools EMF sink', () => {
  let lines: string[];

  beforeEach(() => {
    // the test environment sets POWERTOOLS_DEV, which silences metrics unless told otherwise
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    lines = [];
    vi.spyOn(console, 'log').mockImplementation((line: unknown) => {
      lines.push(String(line));
    });
  });

  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('writes one EMF document per emit, under exactly [Model, Variant] and [Model, Version]', () => {
    const sink = new PowertoolsMetricsSink(new Metrics({ namespace: METRICS_NAMESPACE }));
    sink.emit(
      { Requests: 1, Latency: 3.5, ModelErrors: 0 },
      { model: 'iris', version: 3, variant: 'candidate' },
    );
    sink.emit({ Requests: 1, ClientErrors: 1 });
    expect(lines).toHaveLength(2);
    const [first] = parseEmfLine(lines[0] ?? '');
    expect(first).toEqual({
      namespace: 'Maas',
      timestamp: expect.any(Number),
      dimensionSets: DIMENSION_SETS.map((set) => [...set]),
      dimensions: { Model: 'iris', Variant: 'candidate', Version: '3' },
      values: { Requests: [1], Latency: [3.5], ModelErrors: [0] },
      units: { Requests: 'Count', Latency: 'Milliseconds', ModelErrors: 'Count' },
    });
    const [second] = parseEmfLine(lines[1] ?? '');
    expect(second).toMatchObject({
      dimensionSets: [],
      dimensions: {},
      values: { ClientErrors: [1] },
    });
  });

  it('ignores lines that are not EMF', () => {
    expect(parseEmfLine('{"level":"INFO","message":"request"}')).toEqual([]);
    expect(parseEmfLine('{"_aws": nope')).toEqual([]);
    expect(parseEmfLine('plain text')).toEqual([]);
  });
});
