// The layer order of src/ (docs/architecture.md): every import — static `import`/`export … from`,
// `import type`, dynamic `import('…')` and `typeof import('…')` — points down the order or stays
// in its own layer, and no files import each other in a cycle. Imports are read with the
// TypeScript parser, so comments and strings that look like imports are not counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Bottom to top; the same table as docs/architecture.md. `.` is src/'s own files (index.ts, api.ts, torch.ts). */
export const LAYERS = [
  'util', 'tensor', 'nn', 'optim', 'data', 'teachers', 'losses', 'methods', 'config', 'text',
  'train', 'distributed', 'run', 'report', 'export', '.', 'cli',
] as const;

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(ROOT, 'src');

interface Import { from: string; to: string; spec: string; line: number }

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier a file names, with its line: declarations, re-exports, import() calls and import types. */
export function moduleSpecifiers(file: string, text: string): { spec: string; line: number }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: { spec: string; line: number }[] = [];
  const add = (node: ts.Node | undefined): void => {
    if (node && ts.isStringLiteralLike(node)) out.push({ spec: node.text, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The src/ file a relative specifier names ('./x.js' is compiled from './x.ts'), or null when it leaves src/. */
function resolveImport(from: string, spec: string): string | null {
  const target = resolve(dirname(from), spec);
  const candidates = [target.replace(/\.js$/, '.ts'), `${target}.ts`, join(target, 'index.ts'), target];
  const hit = candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? candidates[0]!;
  const rel = relative(SRC, hit);
  return rel.startsWith('..') ? null : rel.split(sep).join('/');
}

/** src/tensor/x.ts → 'tensor'; src/nn/zoo/mlp.ts → 'nn'; src/index.ts → '.' */
export function layerOf(rel: string): string {
  const i = rel.indexOf('/');
  return i < 0 ? '.' : rel.slice(0, i);
}

function graph(): { files: string[]; imports: Import[]; outside: string[] } {
  const files = sources(SRC).map((f) => relative(SRC, f).split(sep).join('/'));
  const imports: Import[] = [];
  const outside: string[] = [];
  for (const f of files) {
    const abs = join(SRC, f);
    for (const { spec, line } of moduleSpecifiers(abs, readFileSync(abs, 'utf8'))) {
      if (!spec.startsWith('.')) continue; // node: builtins and npm packages
      const to = resolveImport(abs, spec);
      if (to === null) outside.push(`src/${f}:${line} imports '${spec}', outside src/`);
      else imports.push({ from: f, to, spec, line });
    }
  }
  return { files, imports, outside };
}

/** Strongly connected components of more than one file (or a file importing itself): the import cycles. */
function cycles(files: string[], imports: Import[]): string[][] {
  const next = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const i of imports) next.get(i.from)?.push(i.to);
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (next.get(v) ?? []).includes(v)) found.push(scc.sort());
    }
  };
  for (const f of files) if (!index.has(f)) connect(f);
  return found;
}

test('every folder of src/ has a place in the layer order', () => {
  const { files } = graph();
  const unplaced = [...new Set(files.map(layerOf))].filter((l) => !(LAYERS as readonly string[]).includes(l));
  assert.deepEqual(unplaced, [], `src/ folders missing from the layer order (add them to LAYERS here and to docs/architecture.md): ${unplaced.join(', ')}`);
});

test('imports only point down the layer order (docs/architecture.md)', () => {
  const { imports, outside } = graph();
  const rank = (l: string): number => (LAYERS as readonly string[]).indexOf(l);
  const up = imports
    .filter((i) => rank(layerOf(i.to)) > rank(layerOf(i.from)))
    .map((i) => `src/${i.from}:${i.line} imports '${i.spec}' (src/${i.to}): ${layerOf(i.from)} is below ${layerOf(i.to)}`);
  assert.deepEqual([...outside, ...up], [], `imports pointing up the layer order (${LAYERS.join(' → ')}):\n  ${[...outside, ...up].join('\n  ')}\n`);
});

test('src/ has no import cycles between files', () => {
  const { files, imports } = graph();
  const found = cycles(files, imports).map((scc) => {
    const members = new Set(scc);
    const edges = imports.filter((i) => members.has(i.from) && members.has(i.to)).map((i) => `src/${i.from}:${i.line} imports '${i.spec}'`);
    return `cycle through ${scc.map((f) => `src/${f}`).join(', ')}:\n    ${edges.join('\n    ')}`;
  });
  assert.deepEqual(found, [], `import cycles (type-only imports count too):\n  ${found.join('\n  ')}\n`);
});

test('the import reader sees every kind of import and nothing in comments or strings', () => {
  const text = [
    "import type { A } from './a.js';",
    "import { B,\n  C } from './b.js';",
    "import './side.js';",
    "export { D } from './d.js';",
    "export type { E } from './e.js';",
    "export * as F from './f.js';",
    "export * from './f2.js';",
    "let g: typeof import('./g.js');",
    "const h = await import('./h.js');",
    "// import('./comment.js') and import x from './comment2.js'",
    "const s = \"import('./string.js')\";",
  ].join('\n');
  assert.deepEqual(moduleSpecifiers('x.ts', text).map((s) => s.spec), ['./a.js', './b.js', './side.js', './d.js', './e.js', './f.js', './f2.js', './g.js', './h.js']);
  assert.equal(layerOf('nn/zoo/mlp.ts'), 'nn');
  assert.equal(layerOf('index.ts'), '.');
  assert.deepEqual(cycles(['a', 'b', 'c'], [{ from: 'a', to: 'b', spec: '', line: 1 }, { from: 'b', to: 'a', spec: '', line: 1 }, { from: 'b', to: 'c', spec: '', line: 1 }]), [['a', 'b']]);
});
