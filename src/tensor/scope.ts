// Deterministic memory: every tensor created inside tidy() is freed when it ends, except what
// the function returns (like tf.tidy). Garbage collection is only the safety net.

export interface Tracked {
  dispose(): void;
  readonly isDisposed: boolean;
}

const stack: Set<Tracked>[] = [];
const kept = new WeakSet<Tracked>();

/** Called by every new tensor: it belongs to the innermost open scope, if any. */
export function track(t: Tracked): void {
  const top = stack[stack.length - 1];
  if (top !== undefined && !kept.has(t)) top.add(t);
}

/** Exempt tensors from every enclosing scope (model parameters, running statistics, ...). */
export function keep<T extends Tracked>(t: T): T {
  kept.add(t);
  for (const s of stack) s.delete(t);
  return t;
}

function collect(v: unknown, out: Set<Tracked>, seen: Set<unknown>): void {
  if (v === null || typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  if (isTracked(v)) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collect(x, out, seen);
  else if (v instanceof Map) for (const x of v.values()) collect(x, out, seen);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, out, seen);
}

function isTracked(v: object): v is Tracked {
  return (v as { __tensor?: boolean }).__tensor === true;
}

/**
 * Runs fn; frees every tensor it created except those reachable from its result (tensors,
 * arrays, Maps and plain objects are searched). Returned tensors move to the enclosing scope.
 * fn must be synchronous: a scope cannot span an await.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tracked>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new TypeError('tidy(fn): fn returned a Promise; a scope cannot span an await, use tidy inside the async code');
  }
  const out = new Set<Tracked>();
  collect(result, out, new Set());
  const parent = stack[stack.length - 1];
  for (const t of scope) {
    if (out.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Number of open scopes (for tests and diagnostics). */
export function scopeDepth(): number {
  return stack.length;
}
