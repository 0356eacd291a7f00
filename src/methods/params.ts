// Typed hyper-parameter declarations (docs/architecture.md, "The method contract"). A method
// declares each parameter with a builder (num, int, bool, str, choice, numbers, struct); the
// declarations are data that resolveParams checks experiment values against, and their types
// give `create` its argument's TypeScript type, so method files read `p.temperature` as a number
// without casts. Keys are camelCase; a declaration may name its former snake_case key (`was`),
// still accepted for one release with a deprecation notice.

interface Common<T> {
  readonly default: T;
  readonly description: string;
  /** e.g. 'temperature', 'weight', 'epochs' */
  readonly unit?: string;
  /** The key's former (snake_case) name: accepted for one release with a notice naming the new key. */
  readonly was?: string;
}

export interface NumberParam extends Common<number> {
  readonly type: 'number' | 'integer';
  /** Inclusive range, checked when an experiment file is validated. */
  readonly min?: number;
  readonly max?: number;
}
export interface BooleanParam extends Common<boolean> { readonly type: 'boolean' }
export interface StringParam extends Common<string> { readonly type: 'string' }
export interface ChoiceParam<C extends string = string> extends Common<C> {
  readonly type: 'choice';
  readonly choices: readonly C[];
}
/** A YAML list of numbers (each in [min, max]); the old comma-separated string form is still read. */
export interface NumbersParam extends Common<number[]> {
  readonly type: 'numbers';
  readonly min?: number;
  readonly max?: number;
}
/**
 * A structured value (lists, maps) the method parses itself: `parse` gets the YAML value as given
 * and returns the typed one or throws naming what is wrong; `allowed` says what YAML it takes.
 */
export interface StructParam<T> extends Common<T> {
  readonly type: 'struct';
  readonly allowed: string;
  parse(value: unknown, at: ParseContext): T;
}

/** What a struct parser knows of where it is, for its messages and deprecation notices. */
export interface ParseContext {
  /** e.g. `method 'fitnet': 'pairs'` or `exp.yaml: 'method.params': 'pairs'` */
  readonly where: string;
  /** Reports an old form that is still accepted (printed once per message). */
  deprecated(message: string): void;
}

export type ParamDecl = NumberParam | BooleanParam | StringParam | ChoiceParam | NumbersParam | StructParam<unknown>;
export type ParamType = ParamDecl['type'];

/** The declarations of a method, by camelCase key. */
export type ParamDecls = Readonly<Record<string, ParamDecl>>;
/** The typed values `create` receives for declarations D. */
export type ParamsOf<D> = { -readonly [K in keyof D]: D[K] extends Common<infer T> ? T : never };
/** Untyped values, as an experiment file or a caller gives them (resolveParams checks them). */
export type Params = Record<string, unknown>;

type Options<P> = Omit<P, 'type'>;
export const num = (o: Options<NumberParam>): NumberParam => ({ type: 'number', ...o });
export const int = (o: Options<NumberParam>): NumberParam => ({ type: 'integer', ...o });
export const bool = (o: Options<BooleanParam>): BooleanParam => ({ type: 'boolean', ...o });
export const str = (o: Options<StringParam>): StringParam => ({ type: 'string', ...o });
export const numbers = (o: Options<NumbersParam>): NumbersParam => ({ type: 'numbers', ...o });
export function choice<const C extends string>(choices: readonly C[], o: Omit<Options<ChoiceParam<C>>, 'choices'>): ChoiceParam<C> {
  return { type: 'choice', choices, ...o };
}
export function struct<T>(o: Options<StructParam<T>>): StructParam<T> {
  return { type: 'struct', ...o };
}

const noticed = new Set<string>();

/**
 * A deprecation notice on stderr (through process.emitWarning, so `--no-deprecation` silences it
 * and tests can listen for 'warning'), once per distinct message per process.
 */
export function deprecationNotice(message: string): void {
  if (noticed.has(message)) return;
  noticed.add(message);
  process.emitWarning(message, { type: 'DeprecationWarning', code: 'KDISTILL_DEPRECATED' });
}

/** Old snake_case keys renamed to their declarations' camelCase keys; both forms given is an error. */
function renamed(decls: ParamDecls, given: Params, where: string): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(given)) {
    if (k in decls) {
      out[k] = v;
      continue;
    }
    const now = Object.keys(decls).find((n) => decls[n]!.was === k);
    if (now === undefined) {
      throw new Error(`${where}: unknown hyper-parameter '${k}' (known: ${Object.keys(decls).join(', ') || 'none'})`);
    }
    if (now in given) throw new Error(`${where}: both '${k}' (the deprecated name) and '${now}' are given; keep only '${now}'`);
    deprecationNotice(`${where}: '${k}' is deprecated, use '${now}' (the old name is accepted until the next release)`);
    out[now] = v;
  }
  return out;
}

function checkNumber(v: number, k: string, d: { min?: number; max?: number }, where: string, integer = false): void {
  if (!Number.isFinite(v)) throw new Error(`${where}: '${k}' must be a finite number, got ${v}`);
  if (integer && !Number.isInteger(v)) throw new Error(`${where}: '${k}' must be a whole number, got ${v}`);
  if (d.min !== undefined && v < d.min) throw new Error(`${where}: '${k}' must be >= ${d.min}, got ${v}`);
  if (d.max !== undefined && v > d.max) throw new Error(`${where}: '${k}' must be <= ${d.max}, got ${v}`);
}

function value(d: ParamDecl, k: string, v: unknown, where: string): unknown {
  const type = (t: string): never => { throw new Error(`${where}: '${k}' must be a ${t}, got ${JSON.stringify(v)}`); };
  switch (d.type) {
    case 'number':
    case 'integer':
      if (typeof v !== 'number') return type('number');
      checkNumber(v, k, d, where, d.type === 'integer');
      return v;
    case 'boolean':
      return typeof v === 'boolean' ? v : type('boolean');
    case 'string':
      return typeof v === 'string' ? v : type('string');
    case 'choice':
      if (typeof v !== 'string') return type('string');
      if (!d.choices.includes(v)) throw new Error(`${where}: '${k}' must be one of ${d.choices.join(', ')}, got '${v}'`);
      return v;
    case 'numbers': {
      let list: unknown = v;
      if (typeof v === 'string') {
        // The packed form of the first release ('1,0.5'); '' was "none given".
        deprecationNotice(`${where}: '${k}' as a comma-separated string is deprecated; give a YAML list, e.g. ${k}: [${v.split(',').map((s) => s.trim()).filter(Boolean).join(', ')}]`);
        list = v.trim() ? v.split(',').map((s) => Number(s.trim())) : [];
      }
      if (!Array.isArray(list) || !list.every((x): x is number => typeof x === 'number')) return type('list of numbers');
      list.forEach((x, i) => checkNumber(x, `${k}[${i}]`, d, where));
      return list;
    }
    case 'struct':
      return d.parse(v, { where: `${where}: '${k}'`, deprecated: deprecationNotice });
  }
}

/**
 * Fills defaults and checks every given value against its declaration; old key names are renamed
 * (with a notice) and old packed-string values converted by their declarations. The result is
 * typed by the spec's declarations.
 */
export function resolveDeclared<D extends ParamDecls>(decls: D, given: Params, where: string): ParamsOf<D> {
  const g = renamed(decls, given, where);
  const out: Params = {};
  // An empty YAML value (null) means the default, as it did before the declarations were typed.
  for (const [k, d] of Object.entries(decls)) out[k] = g[k] !== undefined && g[k] !== null ? value(d, k, g[k], where) : d.default;
  return out as ParamsOf<D>;
}

/** What `kdistill methods` prints as a declaration's allowed values. */
export function allowedValues(d: ParamDecl): string {
  const range = (kind: string): string =>
    d.type !== 'number' && d.type !== 'integer' && d.type !== 'numbers' ? kind
      : d.min !== undefined && d.max !== undefined ? `${kind} in [${d.min}, ${d.max}]`
        : d.min !== undefined ? `${kind} >= ${d.min}` : d.max !== undefined ? `${kind} <= ${d.max}` : kind;
  switch (d.type) {
    case 'choice': return `one of ${d.choices.join(' | ')}`;
    case 'boolean': return 'true | false';
    case 'string': return 'string';
    case 'numbers': return range('list of numbers');
    case 'struct': return d.allowed;
    default: return range(d.type);
  }
}

/** A value as YAML flow text (how `kdistill methods` shows defaults): [a, b], {k: v}, bare words. */
export function yamlFlow(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(yamlFlow).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${yamlFlow(x)}`).join(', ')}}`;
  if (typeof v === 'string') return /^[A-Za-z_][\w.-]*$/.test(v) && !/^(true|false|null|yes|no|on|off)$/i.test(v) ? v : JSON.stringify(v);
  return String(v);
}
