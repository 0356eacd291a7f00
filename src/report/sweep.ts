// A sweep's report.html: the trial table and, for each swept parameter, the validation metric of
// every trial against that parameter's value (one small SVG each, drawn here: the page needs no
// script). Written by `kdistill sweep` into the sweep folder, and by `kdistill report <sweep-dir>`.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SweepRecord, TrialRow } from '../run/sweep.js';
import { atomicWrite } from '../util/fs.js';

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
const W = 380, H = 240, L = 52, R = 12, T = 26, B = 40;

/** Metrics that are fractions are drawn in percent. */
function scale(metric: string): { k: number; unit: string } {
  return metric === 'nll' ? { k: 1, unit: '' } : { k: 100, unit: ' %' };
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** One chart: the metric of every trial with a value against the value of parameter `path`. */
export function sweepChart(r: SweepRecord, path: string): string {
  const pts = r.trials.filter((t): t is TrialRow & { value: number } => t.value !== null);
  const { k, unit } = scale(r.metric);
  const xs = pts.map((t) => t.settings[path]);
  const numeric = xs.every((x) => typeof x === 'number');
  const param = r.search.params.find((p) => p.path === path);
  const nums = xs as number[];
  const log = numeric && nums.every((x) => x > 0) && ((param?.domain.kind === 'range' && param.domain.log) || Math.max(...nums) / Math.min(...nums) >= 20);
  const cats = numeric ? [] : [...new Set(xs.map(show))];
  const f = (x: number): number => (log ? Math.log10(x) : x);
  let x0 = numeric ? Math.min(...nums.map(f)) : -0.5, x1 = numeric ? Math.max(...nums.map(f)) : cats.length - 0.5;
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  const pad = numeric ? (x1 - x0) * 0.06 : 0;
  x0 -= pad; x1 += pad;
  const ys = pts.map((t) => t.value * k);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const ypad = (y1 - y0) * 0.08;
  y0 -= ypad; y1 += ypad;
  const sx = (x: number): number => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number): number => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  const px = (t: TrialRow): number => (numeric ? sx(f(t.settings[path] as number)) : sx(cats.indexOf(show(t.settings[path]))));
  let s = `<text class="t" x="${W / 2}" y="16">val ${esc(r.metric)} vs ${esc(path)}</text>`;
  for (const y of niceTicks(y0, y1)) s += `<line class="g" x1="${L}" x2="${W - R}" y1="${sy(y)}" y2="${sy(y)}"/><text class="yl" x="${L - 4}" y="${sy(y) + 3}">${y}${unit}</text>`;
  const xt = numeric ? niceTicks(x0, x1).map((v) => ({ at: sx(v), label: log ? String(Number((10 ** v).toPrecision(3))) : String(v) })) : cats.map((c, i) => ({ at: sx(i), label: c }));
  for (const t of xt) s += `<text class="xl" x="${t.at}" y="${H - B + 14}">${esc(t.label)}</text>`;
  s += `<line class="a" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/><line class="a" x1="${L}" x2="${L}" y1="${T}" y2="${H - B}"/>`;
  s += `<text class="xl" x="${(L + W - R) / 2}" y="${H - 6}">${esc(path)}${log ? ' (log scale)' : ''}</text>`;
  for (const t of pts) {
    const best = r.best?.key === t.key;
    const tip = `trial ${t.trial}: ${Object.entries(t.settings).map(([p, v]) => `${p}=${show(v)}`).join(', ')} → ${(t.value * k).toFixed(2)}${unit} (${t.status})`;
    s += `<circle cx="${px(t).toFixed(1)}" cy="${sy(t.value * k).toFixed(1)}" r="${best ? 5 : 3.5}" fill="${t.status === 'stopped' ? 'none' : best ? '#d62728' : '#1f77b4'}" stroke="${best ? '#d62728' : '#1f77b4'}"><title>${esc(tip)}</title></circle>`;
  }
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="val ${esc(r.metric)} vs ${esc(path)}">${s}</svg>`;
}

export function renderSweepHtml(r: SweepRecord, table: string): string {
  const charts = r.search.params.map((p) => sweepChart(r, p.path)).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">
<title>kdistill sweep: ${esc(r.name)}</title><style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:16px 24px;color:#222}h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}.grid{display:flex;flex-wrap:wrap;gap:12px}
.chart{border:1px solid #eee;border-radius:4px}.chart text{font-size:10px;fill:#444}.chart .t{font-size:12px;font-weight:600;text-anchor:middle}
.chart .xl{text-anchor:middle}.chart .yl{text-anchor:end}.chart .g{stroke:#f0f0f0}.chart .a{stroke:#999}
pre{background:#f7f7f7;border:1px solid #eee;padding:8px 12px;overflow:auto;font-size:12px}p.note{color:#666}
</style></head><body>
<h1>kdistill sweep: ${esc(r.name)}</h1>
<p class="note">${esc(r.experiment)}: ${r.trials.length} trials, val ${esc(r.metric)} (${r.direction === 'max' ? 'higher' : 'lower'} is better); filled: finished, hollow: stopped early, red: chosen.</p>
<h2>Validation metric against each swept parameter</h2><div class="grid">${charts}</div>
<h2>Trials</h2><pre>${esc(table)}</pre>
</body></html>
`;
}

/** report.html in a sweep folder (from its sweep.json and sweep.md); returns its path. */
export function writeSweepReport(dir: string, out = join(dir, 'report.html')): string {
  const file = join(dir, 'sweep.json');
  if (!existsSync(file)) throw new Error(`report: ${dir} holds no sweep (no sweep.json)`);
  const r = JSON.parse(readFileSync(file, 'utf8')) as SweepRecord;
  const table = existsSync(join(dir, 'sweep.md')) ? readFileSync(join(dir, 'sweep.md'), 'utf8') : '';
  atomicWrite(out, renderSweepHtml(r, table));
  return resolve(out);
}

/** True for a folder kdistill sweep wrote. */
export const isSweepFolder = (dir: string): boolean => existsSync(join(dir, 'sweep.json'));
