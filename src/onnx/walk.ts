import type { AttributeProto, GraphProto, NodeProto } from 'onnx-buf';

/** Subgraphs held by a node's attributes (If branches, Loop and Scan bodies, custom GRAPHS). */
export const subgraphsOf = (n: NodeProto): GraphProto[] =>
  n.attribute.flatMap((a: AttributeProto) => [...(a.g ? [a.g] : []), ...a.graphs]);

/**
 * Calls `visit` for `g` and every subgraph below it, with its nesting depth (0 for `g`).
 * Iterative, so a hostile model nested far beyond any cap cannot overflow the JS stack before the
 * cap check sees it.
 */
export const walkGraphs = (
  g: GraphProto,
  visit: (graph: GraphProto, depth: number) => void,
): void => {
  const stack: { graph: GraphProto; depth: number }[] = [{ graph: g, depth: 0 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    visit(top.graph, top.depth);
    for (const n of top.graph.node) {
      for (const sub of subgraphsOf(n)) stack.push({ graph: sub, depth: top.depth + 1 });
    }
  }
};
