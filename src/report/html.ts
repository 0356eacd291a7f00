// The report page: one self-contained HTML file (inline CSS, inline script, the data as embedded
// JSON; nothing fetched from the network). The same page, with `live` set, is what
// `kdistill serve` returns: it then re-fetches its data and redraws as the run trains.
import { reportClient } from './client.js';
import type { ReportData } from './types.js';

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:16px 24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:14px;margin:12px 0 4px}
h3 small{color:#888;font-weight:normal}#meta{color:#666;font-size:12px}.live{color:#2ca02c;font-weight:600}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}
th:nth-child(-n+3),td:nth-child(-n+3){text-align:left}tr.teacher td{background:#f6f8fc}tr.running td{color:#888}
#table{overflow-x:auto}td .src{color:#888;font-size:11px;max-width:48em;overflow-wrap:anywhere}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,380px),1fr));gap:12px;align-items:start}
.chart{background:#fff;border:1px solid #eee;border-radius:4px;box-sizing:border-box}.grid>svg.chart{width:100%;height:auto}
.chart text{font-size:10px;fill:#444}.chart .t{font-size:12px;font-weight:600;text-anchor:middle}.chart .xl{text-anchor:middle}
.chart .yl{text-anchor:end}.chart .pl{text-anchor:start}.chart .lgl{text-anchor:start;font-size:10px}.chart .cn{text-anchor:middle;font-size:9px}
.chart .g{stroke:#f0f0f0}.chart .a{stroke:#999}.empty{color:#888}
pre{background:#f7f7f7;border:1px solid #eee;padding:8px 12px;overflow:auto;font-size:12px}
@media print{.chart{break-inside:avoid}}
`;

const escHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
/** JSON safe inside <script>: no '</script>' or '<!--' can appear. */
export const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

export function renderReportHtml(data: ReportData, o: { live?: { url: string; everyMs: number } } = {}): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">
<title>${escHtml(data.title)}</title><style>${CSS}</style></head>
<body>
<h1 id="title">${escHtml(data.title)}</h1><div id="meta"></div>
<h2>Teacher vs student</h2><div id="table"></div>
<div id="multilabel"></div>
<div id="int8"></div>
<div id="images"></div>
<h2>Training curves</h2><div id="curves" class="grid"></div>
<h2>Confusion matrices <small>(test set; rows: true class, columns: predicted class)</small></h2><div id="confusion" class="grid"></div>
<h2>Calibration</h2><div id="reliability" class="grid"></div>
<h2>Experiment</h2><div id="experiments"></div>
<noscript><p>The charts are drawn by the page's inline script; enable JavaScript to see them.</p></noscript>
<script id="kd-data" type="application/json">${scriptJson(data)}</script>
<script>
(${reportClient.toString()})(JSON.parse(document.getElementById('kd-data').textContent), ${JSON.stringify(o.live ?? null)});
</script>
</body></html>
`;
}
