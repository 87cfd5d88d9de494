import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';
import { ModelRejectedError } from './errors.ts';
import { subgraphsOf } from './walk.ts';

/**
 * C0 and C1 control characters and the Unicode line and paragraph separators: anything that can
 * end or rewrite a log line. onnxruntime quotes node and graph names verbatim in its messages, so
 * a name holding a newline could print a line of its own choosing (a forged EMF metric document,
 * read by CloudWatch as another model's figures).
 */
const isControl = (code: number): boolean =>
  code <= 0x1f || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;

const hasControl = (name: string): boolean => {
  for (let i = 0; i < name.length; i++) if (isControl(name.charCodeAt(i))) return true;
  return false;
};

const escaped = (name: string): string => JSON.stringify(name.slice(0, 80));

/** Every name a model gives its graphs, nodes, values and functions, with where it is. */
function* namesOf(model: ModelProto): Generator<[name: string, where: string]> {
  const graphs: [GraphProto, string][] = model.graph ? [[model.graph, 'the main graph']] : [];
  const subgraphs = (list: readonly NodeProto[]): void => {
    for (const n of list) {
      for (const sub of subgraphsOf(n)) graphs.push([sub, `a subgraph of node ${escaped(n.name)}`]);
    }
  };
  for (const f of model.functions) subgraphs(f.node);
  for (let top = graphs.pop(); top !== undefined; top = graphs.pop()) {
    const [g, where] = top;
    yield [g.name, `the name of ${where}`];
    for (const vi of [...g.input, ...g.output, ...g.valueInfo])
      yield [vi.name, `a value of ${where}`];
    for (const t of g.initializer) yield [t.name, `an initializer of ${where}`];
    for (const n of g.node) {
      yield [n.name, `a node name in ${where}`];
      for (const v of [...n.input, ...n.output]) yield [v, `a node's input or output in ${where}`];
    }
    subgraphs(g.node);
  }
  for (const f of model.functions) {
    yield [f.name, 'a function name'];
    for (const n of f.node) {
      yield [n.name, `a node name in function ${escaped(f.name)}`];
      for (const v of [...n.input, ...n.output])
        yield [v, `a value of function ${escaped(f.name)}`];
    }
    for (const v of [...f.input, ...f.output]) yield [v, `a value of function ${escaped(f.name)}`];
  }
}

/**
 * Refuses a model naming a graph, node, value or function with a control character (newline,
 * carriage return, escape...): such names serve no model and can forge log lines.
 */
export const checkNames = (model: ModelProto): void => {
  for (const [name, where] of namesOf(model)) {
    if (hasControl(name)) {
      throw new ModelRejectedError(
        'ControlCharacterInName',
        `${where.charAt(0).toUpperCase()}${where.slice(1)} is ${escaped(name)}, which holds a control character (newline, carriage return, tab, escape...). ` +
          'Names of graphs, nodes, values and functions must be printable: rename them in the exporter (e.g. replace "\\n" with "_").',
        { details: { where, name: name.slice(0, 200) } },
      );
    }
  }
};
