import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DIMENSION_SETS,
  METRICS_NAMESPACE,
  PowertoolsMetricsSink,
  parseEmfLine,
} from '../../src/metrics/index.ts';

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

  it('publishes both dimension sets without a warning, request after request', () => {
    const warnings: unknown[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (...args: unknown[]) => warnings.push(args),
      error: (...args: unknown[]) => warnings.push(args),
    };
    const sink = new PowertoolsMetricsSink(new Metrics({ namespace: METRICS_NAMESPACE, logger }));
    for (const version of [1, 2, 3]) {
      sink.emit({ Requests: 1 }, { model: 'iris', version, variant: 'production' });
      sink.emit({ Requests: 1, ClientErrors: 1 });
    }
    expect(warnings).toEqual([]);
    expect(lines).toHaveLength(6);
    const documents = lines.flatMap((line) => parseEmfLine(line));
    expect(documents.map((d) => d.dimensions)).toEqual([
      { Model: 'iris', Variant: 'production', Version: '1' },
      {},
      { Model: 'iris', Variant: 'production', Version: '2' },
      {},
      { Model: 'iris', Variant: 'production', Version: '3' },
      {},
    ]);
  });

  it('ignores lines that are not EMF', () => {
    expect(parseEmfLine('{"level":"INFO","message":"request"}')).toEqual([]);
    expect(parseEmfLine('{"_aws": nope')).toEqual([]);
    expect(parseEmfLine('plain text')).toEqual([]);
  });
});
