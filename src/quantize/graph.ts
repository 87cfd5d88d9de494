import type { GraphProto, NodeProto } from '../onnx/index.ts';

/** Graphs nested in a node's attributes (If branches, Loop and Scan bodies). */
export const subgraphsOf = (node: NodeProto): GraphProto[] => {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.g) out.push(a.g);
    out.push(...a.graphs);
  }
  return out;
};

/** Calls `visit` on every node of `graph` and of every graph nested in it. */
export const walkNodes = (graph: GraphProto, visit: (node: NodeProto, depth: number) => void) => {
  const walk = (g: GraphProto, depth: number) => {
    for (const n of g.node) {
      visit(n, depth);
      for (const sub of subgraphsOf(n)) walk(sub, depth + 1);
    }
  };
  walk(graph, 0);
};

/**
 * How many times each value name is read: node inputs at any depth (a subgraph may read an outer
 * initializer by name) plus the graph's own outputs. A value read zero times can be dropped.
 */
export const countUses = (graph: GraphProto): Map<string, number> => {
  const uses = new Map<string, number>();
  const bump = (name: string) => {
    if (name !== '') uses.set(name, (uses.get(name) ?? 0) + 1);
  };
  walkNodes(graph, (n) => {
    for (const i of n.input) bump(i);
  });
  for (const o of graph.output) bump(o.name);
  return uses;
};

/**
 * Hands out names no value or node of the model uses yet, so inserted nodes and tensors can never
 * shadow an existing one, including names inside subgraphs.
 */
export class NameAllocator {
  readonly #taken = new Set<string>();

  constructor(graph: GraphProto) {
    const take = (g: GraphProto) => {
      for (const v of [...g.input, ...g.output, ...g.valueInfo]) this.#taken.add(v.name);
      for (const t of g.initializer) this.#taken.add(t.name);
      for (const s of g.sparseInitializer) if (s.values) this.#taken.add(s.values.name);
    };
    take(graph);
    walkNodes(graph, (n) => {
      this.#taken.add(n.name);
      for (const v of [...n.input, ...n.output]) this.#taken.add(v);
      for (const sub of subgraphsOf(n)) take(sub);
    });
  }

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.#taken.has(name); i++) name = `${base}_${i}`;
    this.#taken.add(name);
    return name;
  }
}
