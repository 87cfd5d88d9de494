import { describe, expect, it } from 'vitest';
import {
  historyKeyTime,
  InvalidModelNameError,
  isOutcomeOf,
  keys,
  parseIncomingKey,
  validateModelName,
  versionOfPrefix,
} from '../../src/registry/index.ts';

describe('model names', () => {
  it.each(['iris', 'minilm-l6.v2', 'a', '0_model', 'a'.repeat(63)])('accepts %s', (name) => {
    expect(validateModelName(name)).toBe(name);
  });

  it.each(['', 'Iris', '-lead', '.hidden', 'has space', 'a/b', '../etc', 'a'.repeat(64)])(
    'rejects %j with a readable reason',
    (name) => {
      expect(() => validateModelName(name)).toThrow(InvalidModelNameError);
      expect(() => validateModelName(name)).toThrow(/use 1 to 63 characters/);
    },
  );
});

describe('storage contract keys', () => {
  it('places every object where docs/design.md says', () => {
    expect(keys.variant('iris', 3, 'fp32')).toBe('registry/iris/3/model.onnx');
    expect(keys.variant('iris', 3, 'int8')).toBe('registry/iris/3/model.int8.onnx');
    expect(keys.manifest('iris', 3)).toBe('registry/iris/3/manifest.json');
    expect(keys.aliases('iris')).toBe('registry/iris/aliases.json');
    expect(keys.incomingModel('iris', 'v2.onnx')).toBe('incoming/iris/v2.onnx');
    expect(keys.samplesFor('incoming/iris/v2.onnx')).toBe('incoming/iris/v2.samples.json');
  });

  it('orders history keys by time, and reads the time back', () => {
    const early = keys.historyRecord('iris', 999, 'b');
    const late = keys.historyRecord('iris', 1000, 'a');
    expect(early < late).toBe(true);
    expect(historyKeyTime(late)).toBe(1000);
    expect(keys.historyTimePrefix('iris', 1000) < late).toBe(true);
    expect(historyKeyTime('registry/iris/aliases.json')).toBeUndefined();
  });

  it('reads version numbers from version prefixes only', () => {
    expect(versionOfPrefix('registry/iris/12/')).toBe(12);
    expect(versionOfPrefix('registry/iris/history/')).toBeUndefined();
    expect(versionOfPrefix('registry/iris/012/')).toBeUndefined();
  });

  it('splits incoming keys into model, file and kind', () => {
    expect(parseIncomingKey('incoming/iris/v2.onnx')).toEqual({
      model: 'iris',
      fileName: 'v2.onnx',
      kind: 'model',
    });
    expect(parseIncomingKey('incoming/iris/v2.samples.json')?.kind).toBe('samples');
    expect(parseIncomingKey('incoming/iris/readme.txt')?.kind).toBe('other');
    expect(parseIncomingKey('incoming/iris/')).toBeUndefined();
    expect(parseIncomingKey('registry/iris/1/model.onnx')).toBeUndefined();
  });
});

describe('upload outcomes', () => {
  const upload = { sourceKey: 'incoming/iris/v2.onnx', etag: '"abc"' };

  it('matches a registered or rejected record by source key and ETag, quotes aside', () => {
    const record = {
      model: 'iris',
      event: 'registered' as const,
      version: 2,
      at: '2030-01-01T00:00:00Z',
      actor: 'ingest',
      details: { sourceKey: 'incoming/iris/v2.onnx', etag: 'abc' },
    };
    expect(isOutcomeOf(record, upload)).toBe(true);
    expect(isOutcomeOf({ ...record, event: 'rejected' }, upload)).toBe(true);
    expect(isOutcomeOf({ ...record, event: 'promoted' }, upload)).toBe(false);
    expect(isOutcomeOf({ ...record, details: { ...record.details, etag: 'abd' } }, upload)).toBe(
      false,
    );
  });
});
