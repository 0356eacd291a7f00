// CSV reader for tabular classification data: numeric feature columns plus one label column.
// Quoted fields (RFC 4180, with "" escapes and embedded newlines), CRLF, a UTF-8 BOM and gzip
// input are handled; lines starting with '#' are comments and skipped; a first line with more
// ';' than ',' makes ';' the separator. Every defect is reported as file:line:column with the
// column's name. The format as users see it is documented in docs/data.md.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Dataset } from './dataset.js';
import { DataError, DEFAULT_MAX_BYTES, fileSha256, readFileChecked, sharedFloat32, sharedInt32 } from './errors.js';

export interface CsvOptions {
  /** Whether the first row names the columns; 'auto' (default): yes if any feature cell in it is not a number. */
  header?: boolean | 'auto';
  /** Label column by name or index (negative counts from the end); null for unlabeled data. Default: last column. */
  label?: string | number | null;
  /** One character; default: ';' if the first line has more ';' than ',', else ','. */
  delimiter?: string;
  /**
   * The class ids: label strings are looked up in this list (a numeric label also by value, so
   * '3.0' finds '3'). Without it, labels whose values are all non-negative integers ('3' or '3.0')
   * are used as ids directly; other numeric labels become classes in numeric order, any other
   * labels classes in code-unit order.
   */
  classNames?: readonly string[];
  /** Dataset name; default the file's base name. */
  name?: string;
  /** Largest file (and decompressed size) accepted; default 2 GiB. */
  maxBytes?: number;
}

interface Row { fields: string[]; line: number; cols: number[] }

/** Splits text into rows of fields, tracking each field's line and column for error messages. */
function* rows(text: string, delim: string, file: string): Generator<Row> {
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let lineStart = i;
  while (i < n) {
    // A comment line: '#' first (after spaces), as pandas' comment='#' and many exporters write.
    let c = i;
    while (c < n && text[c] === ' ') c++;
    if (text[c] === '#') {
      while (c < n && text[c] !== '\n') c++;
      i = c + 1;
      line++;
      lineStart = i;
      continue;
    }
    const fields: string[] = [];
    const cols: number[] = [];
    const rowLine = line;
    let blank = true;
    for (;;) {
      cols.push(i - lineStart + 1);
      let f = '';
      // Leading spaces before a quote are allowed, as many writers pad with them.
      let j = i;
      while (j < n && text[j] === ' ') j++;
      if (j < n && text[j] === '"') {
        blank = false;
        const qLine = line;
        const qCol = j - lineStart + 1;
        j++;
        for (;;) {
          if (j >= n) throw new DataError(file, `line ${qLine}, column ${qCol}: unterminated quoted field`);
          const ch = text[j]!;
          if (ch === '"') {
            if (text[j + 1] === '"') { f += '"'; j += 2; continue; }
            j++;
            break;
          }
          if (ch === '\n') { line++; lineStart = j + 1; }
          f += ch;
          j++;
        }
        while (j < n && (text[j] === ' ' || text[j] === '\t')) j++;
        if (j < n && text[j] !== delim && text[j] !== '\n' && text[j] !== '\r') {
          throw new DataError(file, `line ${line}, column ${j - lineStart + 1}: unexpected '${text[j]}' after a quoted field`);
        }
        i = j;
      } else {
        let k = i;
        while (k < n && text[k] !== delim && text[k] !== '\n' && text[k] !== '\r') k++;
        f = text.slice(i, k).trim();
        if (f !== '' || (k < n && text[k] === delim)) blank = false;
        i = k;
      }
      fields.push(f);
      if (i < n && text[i] === delim) { i++; continue; }
      break;
    }
    if (i < n && text[i] === '\r') i++;
    if (i < n && text[i] === '\n') i++;
    line++;
    lineStart = i;
    if (!blank) yield { fields, line: rowLine, cols };
  }
}

function isNumber(s: string): boolean {
  return s !== '' && Number.isFinite(Number(s));
}

/** ';' when the first non-comment line has more of them than ',' (a European-locale export), else ','. */
function sniffDelimiter(text: string): string {
  const first = /^\ufeff?(?:[ \t]*#.*\r?\n|[ \t]*\r?\n)*(.*)/.exec(text)?.[1] ?? '';
  const count = (ch: string): number => first.split(ch).length - 1;
  return count(';') > count(',') ? ';' : ',';
}

/** Code-unit order, not localeCompare, so class ids do not depend on the machine's locale. */
const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Parses CSV text read from `file` into a Dataset of float32 features [F] and int labels. */
export function parseCsv(text: string, file: string, o: CsvOptions = {}): Dataset {
  const delim = o.delimiter ?? sniffDelimiter(text);
  if (delim.length !== 1 || delim === '"' || delim === '\n' || delim === '\r') throw new TypeError(`readCsv: delimiter must be one character other than a quote or newline, got ${JSON.stringify(delim)}`);
  const it = rows(text, delim, file);
  const first = it.next();
  if (first.done) throw new DataError(file, 'no data rows');
  const ncol = first.value.fields.length;
  const labelSpec = o.label === undefined ? -1 : o.label;

  const resolveLabel = (names: string[] | null): number | null => {
    if (labelSpec === null) return null;
    if (typeof labelSpec === 'number') {
      if (!Number.isInteger(labelSpec) || labelSpec >= ncol || labelSpec < -ncol) throw new DataError(file, `label column index ${labelSpec} out of range for ${ncol} columns`);
      return labelSpec < 0 ? ncol + labelSpec : labelSpec;
    }
    if (!names) throw new DataError(file, `label column '${labelSpec}' given by name, but the file has no header row`);
    const k = names.indexOf(labelSpec);
    if (k < 0) throw new DataError(file, `no column named '${labelSpec}' (columns: ${names.join(', ')})`);
    return k;
  };

  let names: string[] | null = null;
  let pending: Row | null = first.value;
  let hasHeader: boolean;
  if (o.header === 'auto' || o.header === undefined) {
    // A header is any first row with a non-numeric feature cell; the label cell may be text anyway.
    const lc = typeof labelSpec === 'string' ? -2 : resolveLabel(null);
    hasHeader = first.value.fields.some((f, k) => k !== lc && !isNumber(f));
  } else {
    hasHeader = o.header;
  }
  if (hasHeader) { names = first.value.fields; pending = null; }
  const lc = resolveLabel(names);
  const colName = (k: number): string => (names ? `'${names[k]}'` : `${k + 1}`);
  const nf = ncol - (lc === null ? 0 : 1);
  if (nf === 0) throw new DataError(file, 'no feature columns');

  let cap = 1024;
  let x = new Float32Array(cap * nf);
  const labels: string[] = [];
  const labelLines: number[] = [];
  let size = 0;
  const take = (r: Row): void => {
    if (r.fields.length !== ncol) throw new DataError(file, `line ${r.line}: ${r.fields.length} columns, expected ${ncol}`);
    if (size === cap) {
      cap *= 2;
      const nx = new Float32Array(cap * nf);
      nx.set(x);
      x = nx;
    }
    let o2 = size * nf;
    for (let k = 0; k < ncol; k++) {
      const f = r.fields[k]!;
      if (k === lc) {
        if (f === '') throw new DataError(file, `line ${r.line}, column ${r.cols[k]} (${colName(k)}): empty label`);
        labels.push(f);
        labelLines.push(r.line);
        continue;
      }
      const v = Number(f);
      // Math.fround: a value beyond float32's range would be stored as ±Inf.
      if (f === '' || !Number.isFinite(Math.fround(v))) {
        const at = `line ${r.line}, column ${r.cols[k]} (${colName(k)})`;
        if (f === '') throw new DataError(file, `${at}: empty field`);
        const shown = `'${f.length > 40 ? f.slice(0, 40) + '…' : f}'`;
        if (Number.isFinite(v)) throw new DataError(file, `${at}: ${shown} is beyond float32's range (±3.4e38); rescale this column`);
        const hint = f.includes(';') ? ` (it contains ';': give data.delimiter, or separate the columns with ',')`
          : delim === ';' && /^-?\d+,\d+$/.test(f) ? " (a decimal comma: write decimals with '.')" : '';
        throw new DataError(file, `${at}: ${shown} is not a finite number${hint}`);
      }
      x[o2++] = v;
    }
    size++;
  };
  if (pending) take(pending);
  for (const r of it) take(r);
  if (size === 0) throw new DataError(file, 'header row but no data rows');

  const xs = sharedFloat32(size * nf);
  xs.set(x.subarray(0, size * nf));
  let y: Int32Array | null = null;
  let numClasses = 0;
  let classNames: string[] | undefined;
  if (lc !== null) {
    y = sharedInt32(size);
    const values = labels.every(isNumber) ? labels.map(Number) : null;
    if (o.classNames) {
      classNames = [...o.classNames];
      const lookup = classLookup(classNames);
      labels.forEach((l, i) => {
        const id = lookup(l);
        if (id === undefined) throw new DataError(file, `line ${labelLines[i]}: label '${l}' is not one of the given classNames (${classNames!.slice(0, 10).join(', ')}${classNames!.length > 10 ? ', …' : ''})`);
        y![i] = id;
      });
      numClasses = classNames.length;
    } else if (values && values.every((v) => Number.isInteger(v) && v >= 0 && v < 1e9)) {
      // '3' and '3.0' (as pandas writes integer columns with gaps) are both class 3.
      values.forEach((v, i) => { y![i] = v; });
      numClasses = y.reduce((a, b) => Math.max(a, b), -1) + 1;
    } else if (values) {
      // Other numeric labels (e.g. -1/1) in numeric order, named by their first spelling.
      const first = new Map<number, string>();
      labels.forEach((l, i) => { if (!first.has(values[i]!)) first.set(values[i]!, l); });
      const order = [...first.keys()].sort((a, b) => a - b);
      classNames = order.map((v) => first.get(v)!);
      const ids = new Map(order.map((v, i) => [v, i]));
      values.forEach((v, i) => { y![i] = ids.get(v)!; });
      numClasses = classNames.length;
    } else {
      classNames = [...new Set(labels)].sort(byCodeUnits);
      const ids = new Map(classNames.map((c, i) => [c, i]));
      labels.forEach((l, i) => { y![i] = ids.get(l)!; });
      numClasses = classNames.length;
    }
  }
  return {
    name: o.name ?? (file.split(/[\\/]/).pop() ?? file),
    sampleShape: [nf],
    x: xs,
    y,
    size,
    numClasses,
    ...(classNames ? { classNames } : {}),
  };
}

/** Finds a label's class id in `names`: by its text, else a numeric label by value ('3.0' finds '3'). */
function classLookup(names: readonly string[]): (label: string) => number | undefined {
  const byText = new Map(names.map((c, i) => [c, i]));
  const byValue = new Map<number, number>();
  names.forEach((c, i) => { if (isNumber(c) && !byValue.has(Number(c))) byValue.set(Number(c), i); });
  return (l) => byText.get(l) ?? (isNumber(l) ? byValue.get(Number(l)) : undefined);
}

/** Reads a CSV file (gzip detected by its magic bytes). */
export function readCsv(file: string, o: CsvOptions = {}): Dataset {
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_BYTES;
  const got = readFileChecked(file, maxBytes);
  let bytes: Uint8Array = got.bytes;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: maxBytes });
    } catch (e) {
      throw new DataError(file, `cannot decompress (${(e as Error).message})`, { cause: e });
    }
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw new DataError(file, 'is not UTF-8 text', { cause: e });
  }
  const ds = parseCsv(text, file, o);
  return { ...ds, sources: [{ path: file, bytes: got.stat.size, sha256: fileSha256(file, got) }] };
}

export const LETTER_CLASSES = Array.from({ length: 26 }, (_, i) => String.fromCharCode(65 + i));

/** Where Debian's opencv-doc and common layouts put the UCI Letter Recognition file. */
export const LETTER_RECOGNITION_PATHS = [
  '/usr/share/doc/opencv-doc/examples/data/letter-recognition.data',
  '/usr/share/doc/opencv-doc/examples/data/letter-recognition.data.gz',
  '/usr/share/opencv4/samples/data/letter-recognition.data',
];

/**
 * UCI Letter Recognition (20,000 × 16 integer features, classes A–Z in the first column).
 * Looks at `path`, then $KDISTILL_DATA/letter-recognition.data, then Debian opencv-doc's copy.
 */
export function loadLetterRecognition(o: { path?: string } = {}): Dataset {
  const env = process.env.KDISTILL_DATA;
  const candidates = o.path !== undefined ? [o.path]
    : [...(env ? [join(env, 'letter-recognition.data')] : []), ...LETTER_RECOGNITION_PATHS];
  const file = candidates.find((p) => existsSync(p));
  if (!file) {
    throw new Error(`letter-recognition: letter-recognition.data not found (looked in ${candidates.join(', ')}). Install Debian's opencv-doc, or download it from the UCI repository and pass its path or put it in $KDISTILL_DATA.`);
  }
  const ds = readCsv(file, { header: false, label: 0, classNames: LETTER_CLASSES, name: 'letter-recognition' });
  if (ds.sampleShape[0] !== 16) throw new DataError(file, `expected 16 feature columns, got ${ds.sampleShape[0]}`);
  return ds;
}
