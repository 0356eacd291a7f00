import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadLetterRecognition, parseCsv, readCsv } from '../../src/data/csv.js';
import { DataError } from '../../src/data/errors.js';
import { Rng } from '../../src/data/rng.js';
import { fx, throwsData } from './fixtures.js';

test('csv: UCI Letter Recognition format (letter first, 16 integer features)', () => {
  const ds = loadLetterRecognition({ path: fx('csv/letter-recognition.data') });
  assert.equal(ds.name, 'letter-recognition');
  assert.equal(ds.size, 30);
  assert.deepEqual(ds.sampleShape, [16]);
  assert.equal(ds.numClasses, 26);
  assert.equal(ds.classNames![19], 'T');
  assert.deepEqual([ds.y![0], ds.y![1], ds.y![2]], [19, 8, 3]); // T, I, D
  assert.deepEqual(Array.from(ds.x.subarray(0, 16)), [2, 8, 3, 5, 1, 8, 13, 0, 6, 6, 10, 8, 0, 8, 0, 8]);
  assert.equal(ds.sources![0]!.bytes, 1183);
  assert.throws(() => loadLetterRecognition({ path: fx('csv/nope.data') }), /not found.*opencv-doc/);
});

test('csv: header, quoted names and labels, CRLF, BOM, blank lines, label by name or index', () => {
  const ds = readCsv(fx('csv/with-header.csv'), { label: 'species' });
  assert.equal(ds.size, 4);
  assert.deepEqual(ds.sampleShape, [3]);
  // String labels become classes in sorted order.
  assert.deepEqual(ds.classNames, ['setosa', 'versicolor', 'virginica']);
  assert.deepEqual(Array.from(ds.y!), [0, 1, 2, 0]);
  assert.deepEqual(Array.from(ds.x.subarray(0, 3)), [5.1, 3.5, 1.4].map(Math.fround));
  assert.deepEqual(Array.from(ds.x.subarray(9, 12)), [4.9, 3.0, 1.4].map(Math.fround));
  const byIndex = readCsv(fx('csv/with-header.csv'), { label: -2 }); // header detected automatically
  assert.deepEqual(Array.from(byIndex.y!), [0, 1, 2, 0]);
  const fixed = readCsv(fx('csv/with-header.csv'), { label: 'species', classNames: ['virginica', 'setosa', 'versicolor'] });
  assert.deepEqual(Array.from(fixed.y!), [1, 2, 0, 1]);
  throwsData(() => readCsv(fx('csv/with-header.csv'), { label: 'species', classNames: ['setosa'] }), 'with-header.csv', /line 3: label 'versicolor' is not one of the given classNames/);
  throwsData(() => readCsv(fx('csv/with-header.csv'), { label: 'kind' }), 'with-header.csv', /no column named 'kind' \(columns: sepal length, sepal width, species, petal, length\)/);
});

test('csv: integer labels are class ids; no header; unlabeled data', () => {
  const ds = readCsv(fx('csv/int-labels.csv'));
  assert.deepEqual(Array.from(ds.y!), [2, 0, 1]);
  assert.equal(ds.numClasses, 3);
  assert.equal(ds.classNames, undefined);
  assert.deepEqual(Array.from(ds.x), [0.5, 1, 1.5, 2, -300, 3]);
  const un = parseCsv('1,2\n3,4\n', 'mem.csv', { label: null });
  assert.equal(un.y, null);
  assert.deepEqual([un.size, un.sampleShape[0]], [2, 2]);
  const semi = parseCsv('a;b\n1;x\n2;y', 'mem.csv', { delimiter: ';' });
  assert.deepEqual([Array.from(semi.x), Array.from(semi.y!)], [[1, 2], [0, 1]]);
  const quoted = parseCsv('"1","a ""b"",\nc"\n2,d\n', 'mem.csv', { header: false });
  assert.deepEqual(quoted.classNames, ['a "b",\nc', 'd']);
});

test('csv: integer labels written as floats (pandas) are ids by value, not text order; other numeric labels sort by value', () => {
  // Before: '10.0' sorted before '2.0' as text, permuting the classes against any teacher.
  const rows = Array.from({ length: 12 }, (_, i) => `${i},${(i * 7) % 12}.0`).join('\n');
  const ds = parseCsv(rows, 'mem.csv');
  assert.deepEqual(Array.from(ds.y!), Array.from({ length: 12 }, (_, i) => (i * 7) % 12), "'3.0' is class 3");
  assert.equal(ds.classNames, undefined);
  assert.equal(ds.numClasses, 12);
  const signed = parseCsv('1,1\n2,-1\n3,10\n4,2.5\n', 'mem.csv');
  assert.deepEqual(signed.classNames, ['-1', '1', '2.5', '10']);
  assert.deepEqual(Array.from(signed.y!), [1, 0, 3, 2]);
  // Given class names fix the order; a numeric label finds its class by value too.
  const named = parseCsv('1,2.0\n2,10\n3,0\n', 'mem.csv', { classNames: ['10', '2', '0'] });
  assert.deepEqual(Array.from(named.y!), [1, 0, 2]);
  throwsData(() => parseCsv('1,2\n2,7\n', 'mem.csv', { classNames: ['2', '3'] }), 'mem.csv', /line 2: label '7' is not one of the given classNames \(2, 3\)/);
});

test("csv: '#' comment lines are skipped, ';' separators detected, float32 overflow named by line and column", () => {
  const commented = parseCsv('# exported 2024-01-01\nx,y,label\n  # a note\n1,2,a\n3,4,b\n', 'mem.csv');
  assert.deepEqual([commented.size, Array.from(commented.x)], [2, [1, 2, 3, 4]]);
  throwsData(() => parseCsv('# c\n1,2,a\n1,x,b\n', 'mem.csv'), 'mem.csv', /line 3, column 3/);
  const semi = parseCsv('x;y;label\n1.5;2;a\n3;4;b\n', 'mem.csv');
  assert.deepEqual([semi.sampleShape, Array.from(semi.x)], [[2], [1.5, 2, 3, 4]]);
  throwsData(() => parseCsv('x;y;label\n1,5;2;a\n', 'mem.csv'), 'mem.csv', /line 2, column 1 \('x'\): '1,5' is not a finite number \(a decimal comma/);
  throwsData(() => parseCsv('x,y,label\n1;2,3,a\n', 'mem.csv', { delimiter: ',' }), 'mem.csv', /line 2, column 1 \('x'\): '1;2' is not a finite number \(it contains ';'/);
  throwsData(() => parseCsv('x,y,label\n1,2,a\n3,1e39,b\n', 'mem.csv'), 'mem.csv', /line 3, column 3 \('y'\): '1e39' is beyond float32's range/);
  assert.equal(parseCsv('1,3.4e38,0\n2,-3.4e38,1\n', 'mem.csv').size, 2, 'the largest float32 values are accepted');
});

test('csv: defects are reported with file, line, column and column name', () => {
  throwsData(() => readCsv(fx('csv/bad-number.csv')), 'bad-number.csv', /line 3, column 3 \('b'\): 'oops' is not a finite number/);
  throwsData(() => readCsv(fx('csv/empty-field.csv')), 'empty-field.csv', /line 2, column 3 \(2\): empty field/);
  throwsData(() => readCsv(fx('csv/ragged.csv')), 'ragged.csv', /line 2: 2 columns, expected 3/);
  throwsData(() => readCsv(fx('csv/unterminated.csv')), 'unterminated.csv', /line 1, column 5: unterminated quoted field/);
  throwsData(() => readCsv(fx('csv/not-utf8.csv')), 'not-utf8.csv', /not UTF-8/);
  throwsData(() => readCsv(fx('csv/header-only.csv')), 'header-only.csv', /no data rows/);
  throwsData(() => readCsv(fx('csv/missing.csv')), 'missing.csv', /file not found/);
  throwsData(() => readCsv(fx('csv/int-labels.csv'), { label: 'x' }), 'int-labels.csv', /no header row/);
  throwsData(() => readCsv(fx('csv/int-labels.csv'), { label: 7 }), 'int-labels.csv', /index 7 out of range for 3 columns/);
});

test('csv: seeded fuzz of edits never escapes as a non-DataError', () => {
  const rng = new Rng(11);
  const src = readFileSync(fx('csv/with-header.csv'), 'latin1');
  const alphabet = [',', '"', '\n', '\r', ' ', 'x', '1', '.', 'e', '-', '\u0000'];
  for (let k = 0; k < 400; k++) {
    let s = src.slice(0, rng.nextInt(src.length + 1));
    for (let f = rng.nextInt(5); f > 0 && s.length > 0; f--) {
      const at = rng.nextInt(s.length);
      s = s.slice(0, at) + alphabet[rng.nextInt(alphabet.length)] + s.slice(at + (rng.nextInt(2)));
    }
    try {
      const ds = parseCsv(s, `fuzz-${k}.csv`, { label: rng.nextInt(2) ? 2 : -1 });
      assert.equal(ds.x.length, ds.size * ds.sampleShape[0]!);
    } catch (e) {
      assert.ok(e instanceof DataError && e.message.startsWith(`fuzz-${k}.csv: `), `case ${k}: ${String(e)}`);
    }
  }
});
