/**
 * How deep a JSON document we read may nest. `JSON.parse` itself is iterative and takes any depth,
 * but everything after it (`JSON.stringify`, a walk over the value, a log line) recurses, and
 * 2 million levels overflow the stack with a `RangeError` no caller expects. A V2 request is
 * four levels plus the tensor's rank; a registry record a handful.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether `value` nests deeper than `max` arrays/objects, or contains a cycle (which `JSON.parse`
 * never makes, but a value built in code can). Iterative, so the check itself cannot overflow.
 */
export const nestsTooDeep = (value: unknown, max: number = MAX_JSON_DEPTH): boolean => {
  if (typeof value !== 'object' || value === null) return false;
  const open = new Set<object>();
  // one frame per open array/object: its children and the next one to look at
  const stack: { node: object; children: readonly unknown[]; next: number }[] = [];
  const enter = (node: object): boolean => {
    if (stack.length >= max || open.has(node)) return false;
    open.add(node);
    stack.push({ node, children: Array.isArray(node) ? node : Object.values(node), next: 0 });
    return true;
  };
  if (!enter(value)) return true;
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as (typeof stack)[number];
    const { children } = top;
    let i = top.next;
    // numbers and strings are most of a tensor's data: skip them in a tight loop
    while (i < children.length && (typeof children[i] !== 'object' || children[i] === null)) i++;
    if (i === children.length) {
      open.delete(top.node);
      stack.pop();
      continue;
    }
    top.next = i + 1;
    if (!enter(children[i] as object)) return true;
  }
  return false;
};
