// Small validators for experiment files: every error names the path of the offending key
// (e.g. `method.params.temperature`) and says what is allowed.

import { suggest } from '../util/suggest.js';

export class ConfigError extends Error {
  constructor(readonly file: string, readonly path: string, message: string) {
    super(`${file}: ${path ? `'${path}' ` : ''}${message}`);
  }
}

export type Obj = Record<string, unknown>;

export class Checker {
  constructor(readonly file: string) {}

  fail(path: string, msg: string): never {
    throw new ConfigError(this.file, path, msg);
  }

  object(v: unknown, path: string, allowed: string[]): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, `must be a mapping (got ${describe(v)})`);
    for (const k of Object.keys(v as Obj)) {
      if (!allowed.includes(k)) this.fail(join(path, k), `is not a known key${suggest(k, allowed)} (allowed here: ${allowed.join(', ')})`);
    }
    return v as Obj;
  }

  number(o: Obj, key: string, path: string, opts: { min?: number; max?: number; int?: boolean; default?: number } = {}): number {
    const v = o[key];
    const p = join(path, key);
    if (v === undefined) {
      if (opts.default !== undefined) return opts.default;
      this.fail(p, 'is required');
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(p, `must be a number (got ${describe(v)})`);
    if (opts.int && !Number.isInteger(v)) this.fail(p, `must be an integer (got ${v})`);
    if (opts.min !== undefined && v < opts.min) this.fail(p, `must be >= ${opts.min} (got ${v})`);
    if (opts.max !== undefined && v > opts.max) this.fail(p, `must be <= ${opts.max} (got ${v})`);
    return v;
  }

  optNumber(o: Obj, key: string, path: string, opts: { min?: number; max?: number; int?: boolean } = {}): number | undefined {
    return o[key] === undefined ? undefined : this.number(o, key, path, opts);
  }

  string(o: Obj, key: string, path: string, opts: { choices?: string[]; default?: string } = {}): string {
    const v = o[key];
    const p = join(path, key);
    if (v === undefined) {
      if (opts.default !== undefined) return opts.default;
      this.fail(p, `is required${opts.choices ? ` (one of: ${opts.choices.join(', ')})` : ''}`);
    }
    if (typeof v !== 'string') this.fail(p, `must be a string (got ${describe(v)})`);
    if (opts.choices && !opts.choices.includes(v)) this.fail(p, `must be one of ${opts.choices.join(', ')} (got '${v}')${suggest(v, opts.choices)}`);
    return v;
  }

  optString(o: Obj, key: string, path: string, opts: { choices?: string[] } = {}): string | undefined {
    return o[key] === undefined ? undefined : this.string(o, key, path, opts);
  }

  bool(o: Obj, key: string, path: string, dflt: boolean): boolean {
    const v = o[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') this.fail(join(path, key), `must be true or false (got ${describe(v)})`);
    return v;
  }

  numberList(o: Obj, key: string, path: string): number[] | undefined {
    const v = o[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) this.fail(join(path, key), `must be a list of numbers (got ${describe(v)})`);
    return v as number[];
  }
}

export function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `'${v}'`;
  return String(v);
}
