// CSV reader for tabular classification data: numeric feature columns plus one label column.
// Quoted fields (RFC 4180, with "" escapes and embedded newlines), CRLF, a UTF-8 BOM and gzip
// input are handled. Every defect is reported as file:line:column with the column's name.
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
  /** One character; default ','. */
  delimiter?: string;
  /**
   * The class ids: label strings are looked up in this list. Without it, labels that are all
   * non-negative integers are used as ids directly; any other labels become classes in sorted order.
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

/** Parses CSV text read from `file` into a Dataset of float32 features [F] and int labels. */
export function parseCsv(text: string, file: string, o: CsvOptions = {}): Dataset {
  const delim = o.delimiter ?? ',';
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
        continue;
      }
      const v = Number(f);
      if (f === '' || !Number.isFinite(v)) {
        throw new DataError(file, `line ${r.line}, column ${r.cols[k]} (${colName(k)}): ${f === '' ? 'empty field' : `'${f.length > 40 ? f.slice(0, 40) + '…' : f}' is not a finite number`}`);
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
    if (o.classNames) {
      classNames = [...o.classNames];
      const ids = new Map(classNames.map((c, i) => [c, i]));
      labels.forEach((l, i) => {
        const id = ids.get(l);
        if (id === undefined) throw new DataError(file, `label '${l}' (row ${i + 1}) is not one of the given classNames`);
        y![i] = id;
      });
      numClasses = classNames.length;
    } else if (labels.every((l) => /^\d{1,9}$/.test(l))) {
      labels.forEach((l, i) => { y![i] = Number(l); });
      numClasses = y.reduce((a, b) => Math.max(a, b), -1) + 1;
    } else {
      // Code-unit order, not localeCompare, so class ids do not depend on the machine's locale.
      classNames = [...new Set(labels)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
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
