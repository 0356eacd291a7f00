// The report page's script. It runs in the browser: html.ts embeds `reportClient.toString()`
// into the page, so this function must stay self-contained (no imports, no outer variables).
// It draws every chart as inline SVG from the ReportData JSON, and in live mode re-fetches that
// JSON and redraws, so the static report and `kdistill serve` share one drawing code.
import type { ReportData } from './types.js';

export function reportClient(initial: ReportData, live: { url: string; everyMs: number } | null): void {
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
  const W = 420, H = 240, ML = 52, MR = 12, MT = 26, MB = 34;
  type Series = { label: string; x: number[]; y: (number | null)[]; color: string; dash?: boolean };

  const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
  const fmtNum = (v: number): string => {
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
    return Number(v.toPrecision(3)).toString();
  };
  const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(2)}%`);
  const num = (v: number | null | undefined, d = 4): string => (v === null || v === undefined ? '–' : v.toFixed(d));
  const bytes = (b: number | null | undefined): string => (b === null || b === undefined ? '–' : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

  /** Round tick values covering [lo, hi]; whole numbers only when `integer` (epochs and steps have no 1.5). */
  function ticks(lo: number, hi: number, n = 5, integer = false): number[] {
    if (!(hi > lo)) return [integer ? Math.round(lo) : lo];
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
    if (integer) step = Math.max(1, Math.round(step));
    const out: number[] = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }

  function frame(title: string, xr: [number, number], yr: [number, number], xlabel: string, yfmt: (v: number) => string, xInt = false): { svg: string; sx: (v: number) => number; sy: (v: number) => number } {
    const sx = (v: number): number => ML + ((v - xr[0]) / (xr[1] - xr[0] || 1)) * (W - ML - MR);
    const sy = (v: number): number => H - MB - ((v - yr[0]) / (yr[1] - yr[0] || 1)) * (H - MT - MB);
    let s = `<text x="${W / 2}" y="16" class="t">${esc(title)}</text>`;
    for (const t of ticks(yr[0], yr[1])) s += `<line x1="${ML}" x2="${W - MR}" y1="${sy(t)}" y2="${sy(t)}" class="g"/><text x="${ML - 4}" y="${sy(t) + 3}" class="yl">${yfmt(t)}</text>`;
    for (const t of ticks(xr[0], xr[1], 6, xInt)) s += `<line x1="${sx(t)}" x2="${sx(t)}" y1="${H - MB}" y2="${H - MB + 4}" class="a"/><text x="${sx(t)}" y="${H - MB + 15}" class="xl xt">${xInt && Math.abs(t) < 1e6 ? String(t) : fmtNum(t)}</text>`;
    s += `<line x1="${ML}" x2="${W - MR}" y1="${H - MB}" y2="${H - MB}" class="a"/><line x1="${ML}" x2="${ML}" y1="${MT}" y2="${H - MB}" class="a"/>`;
    s += `<text x="${(ML + W - MR) / 2}" y="${H - 4}" class="xl">${esc(xlabel)}</text>`;
    return { svg: s, sx, sy };
  }

  type LegendItem = { label: string; color: string; dash?: boolean; box?: boolean };
  /**
   * A legend under the plot area (below the x-axis label), so it never covers data: one entry per
   * series, a swatch in the series' colour (a line, dashed like the series, or a filled box for
   * bars) and the label, flowed into as many rows as the chart's width needs.
   */
  function legend(items: LegendItem[], y0: number): { svg: string; height: number } {
    const LH = 14;
    let x = ML, y = y0 + 10, s = '';
    for (const it of items) {
      // 10px text: ~5.6px per character, after an 18px swatch, 12px to the next entry.
      const w = 18 + it.label.length * 5.6 + 12;
      if (x > ML && x + w > W - MR) { x = ML; y += LH; }
      const sw = it.box
        ? `<rect x="${x}" y="${y - 8}" width="13" height="9" fill="${it.color}" fill-opacity="0.55" stroke="${it.color}" class="sw"/>`
        : `<line x1="${x}" x2="${x + 14}" y1="${y - 3.5}" y2="${y - 3.5}" stroke="${it.color}" stroke-width="2"${it.dash ? ' stroke-dasharray="4 3"' : ''} class="sw"/>`;
      s += `<g class="lgi" data-legend="${esc(it.label)}">${sw}<text x="${x + 18}" y="${y}" class="lgl">${esc(it.label)}</text></g>`;
      x += w;
    }
    return { svg: s, height: items.length ? y - y0 + 6 : 0 };
  }

  function lineChart(title: string, series: Series[], xlabel: string, o: { percent?: boolean; id?: string } = {}): string {
    const xs: number[] = [], ys: number[] = [];
    for (const s of series) s.x.forEach((x, i) => { const y = s.y[i]; if (y !== null && y !== undefined && Number.isFinite(y)) { xs.push(x); ys.push(y); } });
    if (ys.length === 0) return `<div class="chart empty">${esc(title)}: no data yet</div>`;
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    const pad = (y1 - y0) * 0.05;
    // enough decimals that neighbouring percent ticks never print the same label
    const pd = (y1 - y0) * 100 < 2 ? 2 : (y1 - y0) * 100 < 20 ? 1 : 0;
    // x is a step or an epoch count here: whole-number ticks.
    const f = frame(title, [Math.min(...xs), Math.max(...xs)], [y0 - pad, y1 + pad], xlabel, o.percent ? (v) => `${(v * 100).toFixed(pd)}%` : fmtNum, true);
    let paths = '';
    // Series without a single finite point (e.g. agreement of a run without a teacher) are left out.
    const drawn = series.filter((s) => s.y.some((y) => y !== null && y !== undefined && Number.isFinite(y)));
    drawn.forEach((s) => {
      let d = '', pen = false, pts = 0;
      s.x.forEach((x, i) => {
        const y = s.y[i];
        if (y === null || y === undefined || !Number.isFinite(y)) { pen = false; return; }
        d += `${pen ? 'L' : 'M'}${f.sx(x).toFixed(1)} ${f.sy(y).toFixed(1)}`;
        pen = true;
        pts++;
      });
      // A single epoch is a point, not a line: draw it as a dot so it is visible.
      const dots = pts <= 3 ? s.x.map((x, i) => (s.y[i] === null || s.y[i] === undefined ? '' : `<circle cx="${f.sx(x)}" cy="${f.sy(s.y[i]!)}" r="3" fill="${s.color}"/>`)).join('') : '';
      paths += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dash ? ' stroke-dasharray="4 3"' : ''} data-series="${esc(s.label)}"><title>${esc(s.label)}</title></path>${dots}`;
    });
    const lg = legend(drawn.map((s) => ({ label: s.label, color: s.color, ...(s.dash ? { dash: true } : {}) })), H);
    const h = H + lg.height;
    return `<svg class="chart" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="${esc(title)}"${o.id ? ` id="${esc(o.id)}"` : ''}>${f.svg}${paths}${lg.svg}</svg>`;
  }

  function reliabilityChart(title: string, rel: { model: string; conf: number[]; acc: number[]; count: number[] }[]): string {
    const f = frame(title, [0, 1], [0, 1.05], 'confidence', (v) => `${(v * 100).toFixed(0)}%`);
    const bins = rel[0]?.conf.length ?? 15;
    const bw = (W - ML - MR) / bins;
    let s = `<path d="M${f.sx(0)} ${f.sy(0)}L${f.sx(1)} ${f.sy(1)}" stroke="#999" stroke-dasharray="3 3" fill="none"/>`;
    rel.forEach((r, ri) => {
      const color = COLORS[ri % COLORS.length]!;
      const w = bw / rel.length;
      let bars = '';
      for (let b = 0; b < bins; b++) {
        if (!r.count[b]) continue;
        const x = ML + b * bw + ri * w, y = f.sy(r.acc[b]!);
        bars += `M${x.toFixed(1)} ${(H - MB).toFixed(1)}V${y.toFixed(1)}H${(x + w - 1).toFixed(1)}V${(H - MB).toFixed(1)}Z`;
      }
      s += `<path d="${bars}" fill="${color}" fill-opacity="0.55" stroke="${color}" data-series="${esc(r.model)}"><title>${esc(r.model)}: accuracy per confidence bin</title></path>`;
    });
    const lg = legend([...rel.map((r, ri) => ({ label: r.model, color: COLORS[ri % COLORS.length]!, box: true })), { label: 'perfectly calibrated', color: '#999', dash: true }], H);
    const h = H + lg.height;
    return `<svg class="chart" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="${esc(title)}">${f.svg}${s}${lg.svg}</svg>`;
  }

  /** WCAG relative luminance of an sRGB colour. */
  function luminance(rgb: number[]): number {
    const lin = (v: number): number => { const c = v / 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * lin(rgb[0]!) + 0.7152 * lin(rgb[1]!) + 0.0722 * lin(rgb[2]!);
  }

  function confusionChart(title: string, m: number[][], names: string[]): string {
    const n = m.length, cell = Math.max(14, Math.min(30, Math.floor(300 / Math.max(n, 1))));
    const name = (i: number): string => String(names[i] ?? i);
    // Room for the longest class name at 10px (~5.8px per character): left of the rows, and above
    // the columns, where the predicted classes are written upwards.
    const lw = Math.ceil(Math.max(1, ...m.map((_, i) => name(i).length)) * 5.8) + 6;
    const left = 22 + lw, top = 38 + lw, size = n * cell;
    const w = Math.max(left + size + 10, 200), h = top + size + 10;
    let s = `<text x="${w / 2}" y="16" class="t">${esc(title)}</text><text x="${left + size / 2}" y="32" class="xl">predicted</text>`;
    let d = '';
    const rowSum = m.map((r) => r.reduce((a, b) => a + b, 0) || 1);
    // Cells are shaded by the fraction of their row (sqrt, in 21 buckets), white to blue.
    const shade = (q: number): number[] => [Math.round(255 - q * 12), Math.round(255 - q * 8), 255];
    const bucket = (i: number, j: number): number => Math.round(Math.sqrt(m[i]![j]! / rowSum[i]!) * 20);
    // One path per shade bucket keeps the SVG small.
    const shades = new Map<number, string>();
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const q = bucket(i, j);
        shades.set(q, (shades.get(q) ?? '') + `M${left + j * cell} ${top + i * cell}h${cell - 1}v${cell - 1}h${1 - cell}Z`);
      }
      s += `<text x="${left - 4}" y="${top + i * cell + cell / 2 + 3}" class="yl tl">${esc(name(i))}</text>`;
      const cx = left + i * cell + cell / 2 + 3;
      s += `<text transform="translate(${cx} ${top - 4}) rotate(-90)" class="pl">${esc(name(i))}</text>`;
    }
    for (const [q, path] of shades) d += `<path d="${path}" fill="rgb(${shade(q).join(',')})"/>`;
    // Each count in black or white, whichever contrasts more with its cell (WCAG contrast ratio:
    // (L1 + 0.05) / (L2 + 0.05)): the better of the two is at least 4.58 on any background, above
    // the 4.5 that WCAG asks of small text.
    // Set as a style: the stylesheet's 'text' fill would override a fill attribute.
    let nums = '';
    if (cell >= 20) {
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          if (!m[i]![j]) continue;
          const L = luminance(shade(bucket(i, j)));
          const ink = 1.05 / (L + 0.05) > (L + 0.05) / 0.05 ? '#fff' : '#000';
          nums += `<text x="${left + j * cell + cell / 2}" y="${top + i * cell + cell / 2 + 3}" class="cn" style="fill:${ink}">${m[i]![j]}<title>${esc(name(i))} predicted as ${esc(name(j))}: ${m[i]![j]}</title></text>`;
        }
      }
    }
    s += `<text x="12" y="${top + size / 2}" class="xl" transform="rotate(-90 12 ${top + size / 2})">true</text>`;
    return `<svg class="chart cm" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">${s}${d}${nums}</svg>`;
  }

  /** Horizontal grouped bars in [0, 1], one group per label (multi-label F1 / AP per model). */
  function barChart(title: string, labels: string[], series: { label: string; values: number[]; color: string }[]): string {
    const LW = 170, bh = 7, gap = 5, gh = series.length * bh + gap, w = 560, top = 44;
    const h = top + labels.length * gh + 30, sx = (v: number): number => LW + Math.max(0, Math.min(1, v)) * (w - LW - 20);
    let s = `<text x="${w / 2}" y="16" class="t">${esc(title)}</text>`;
    for (const t of [0, 0.25, 0.5, 0.75, 1]) s += `<line x1="${sx(t)}" x2="${sx(t)}" y1="${top - 4}" y2="${h - 24}" class="g"/><text x="${sx(t)}" y="${h - 12}" class="xl">${t}</text>`;
    labels.forEach((l, i) => {
      const y = top + i * gh;
      s += `<text x="${LW - 6}" y="${y + (series.length * bh) / 2 + 3}" class="yl">${esc(l)}</text>`;
      series.forEach((se, k) => {
        const v = se.values[i]!;
        if (Number.isFinite(v)) s += `<rect x="${LW}" y="${y + k * bh}" width="${sx(v) - LW}" height="${bh - 1}" fill="${se.color}"><title>${esc(se.label)}: ${esc(l)} ${v.toFixed(3)}</title></rect>`;
      });
    });
    series.forEach((se, k) => { s += `<g class="lgi" data-legend="${esc(se.label)}"><rect x="${LW + k * 170}" y="${top - 20}" width="13" height="9" fill="${se.color}" class="sw"/><text x="${LW + k * 170 + 18}" y="${top - 12}" class="lgl">${esc(se.label)}</text></g>`; });
    return `<svg class="chart" aria-label="${esc(title)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${s}</svg>`;
  }

  /** Multi-label runs: metrics per model at the validation-chosen threshold, and F1 / AP per label. */
  function multiLabelSection(runs: ReportData['runs']): string {
    let html = '';
    for (const r of runs) {
      const ml = r.multiLabel;
      if (!ml) continue;
      const rows = ml.models.map((m) => `<tr><td>${esc(m.model)}</td><td>${num(m.microF1)}</td><td>${num(m.macroF1)}</td><td>${pct(m.subsetAccuracy)}</td><td>${num(m.mAP)}</td><td>${num(m.threshold, 2)}</td></tr>`).join('');
      html += `<h3>${esc(r.name)} <small>multi-label, ${ml.labels.length} labels; test set, decision threshold chosen on the validation split</small></h3>` +
        `<table><thead><tr><th>model</th><th>micro F1</th><th>macro F1</th><th>subset accuracy</th><th>mAP</th><th>threshold</th></tr></thead><tbody>${rows}</tbody></table>` +
        '<div class="grid">' +
        barChart('F1 per label', ml.labels.map((l, i) => `${l} (${ml.support[i]})`), ml.models.map((m, k) => ({ label: m.model, values: m.f1, color: COLORS[k % COLORS.length]! }))) +
        barChart('average precision per label', ml.labels.map((l, i) => `${l} (${ml.support[i]})`), ml.models.map((m, k) => ({ label: m.model, values: m.ap, color: COLORS[k % COLORS.length]! }))) +
        '</div>';
    }
    return html ? `<h2>Multi-label metrics</h2>${html}` : '';
  }

  /** `kdistill export --quantize int8`: float vs INT8 file size and batch-1 latency, and the INT8 file's agreement with kdistill, per runtime. */
  function int8Section(runs: ReportData['runs']): string {
    let html = '';
    for (const r of runs) {
      const q = r.int8;
      if (!q) continue;
      const ms = (v: number | undefined): string => (v === undefined ? '–' : `${v.toFixed(3)} ms`);
      // The graph as written (optimisations off), then as deployed (onnxruntime's QDQ fusions on) when measured.
      type Agreement = { agreement: number; withinStep: number; maxAbsDiff: number; optimized?: { agreement: number } };
      const agree = (c: Agreement | null | undefined): string => (c ? `${pct(c.agreement)} (within one step: ${pct(c.withinStep)}; max |diff| ${c.maxAbsDiff.toExponential(2)}${c.optimized ? `; optimised graph: ${pct(c.optimized.agreement)}` : ''})` : '–');
      const how = q.method === 'qat' ? 'quantization-aware training' : `post-training, calibrated on ${q.calibrationSamples} training samples`;
      const row = (m: string, b: number, node: number | undefined, web: number | undefined, n: string, w: string): string =>
        `<tr data-model="${m}"><td>${m}</td><td>${bytes(b)}</td><td>${ms(node)}</td><td>${ms(web)}</td><td>${n}</td><td>${w}</td></tr>`;
      // How latency was timed, and a warning when the browser's clock was coarse (page not cross-origin isolated).
      const timing = q.timing ? `; latency: median of ${q.timing.runs} single batch-1 runs after ${q.timing.warmup} warm-up` : '';
      const coarse = q.web?.timing?.coarse ? `; web latency coarse (clock ${q.web.timing.clockResolutionMs.toFixed(3)} ms: page not cross-origin isolated)` : '';
      html += `<h3>${esc(r.name)} <small>INT8 by ${esc(how)}; ${q.check ? q.check.samples : 0} test samples; onnxruntime-node${q.web ? `, onnxruntime-web ${esc(q.web.version)} (headless Chromium)` : ''}, one thread${timing}${coarse}</small></h3>` +
        '<table><thead><tr><th>model</th><th>file size</th><th>batch-1 latency, node</th><th>batch-1 latency, web</th><th>top-1 agreement with kdistill, node</th><th>top-1 agreement with kdistill, web</th></tr></thead><tbody>' +
        row('float', q.bytes.float, q.latencyMs?.float, q.web?.latencyMs?.float, '–', agree(q.web?.check.float)) +
        row('int8', q.bytes.int8, q.latencyMs?.int8, q.web?.latencyMs?.int8, agree(q.check), agree(q.web?.check)) +
        '</tbody></table>' + (q.note ? `<p class="empty">${esc(q.note)}</p>` : '');
    }
    return html ? `<h2>INT8 export</h2>${html}` : '';
  }

  /** Data-free runs: the images the student learned from, as the PNGs the run saved. */
  function imagesSection(runs: ReportData['runs']): string {
    let html = '';
    for (const r of runs) {
      for (const im of r.images ?? []) {
        html += `<figure><img alt="${esc(im.title)}" src="data:image/png;base64,${im.pngBase64}" style="image-rendering:pixelated;width:280px;border:1px solid #eee"><figcaption>${esc(r.name)}: ${esc(im.title)}<div class="src">${esc(im.file)}</div></figcaption></figure>`;
      }
    }
    return html ? `<h2>Synthesised images</h2><div class="grid">${html}</div>` : '';
  }

  function render(data: ReportData): void {
    const runs = data.runs;
    const color = (i: number): string => COLORS[i % COLORS.length]!;
    const multi = runs.length > 1;
    document.title = data.title;
    const set = (id: string, html: string): void => { const el = document.getElementById(id); if (el) el.innerHTML = html; };
    set('title', esc(data.title));
    set('meta', `generated ${esc(data.generated)}${live ? ' · <span class="live">live: refreshing every ' + live.everyMs / 1000 + ' s</span>' : ''} · ${runs.map((r) => `${esc(r.name)} (${r.status})`).join(', ')}`);

    // Table: teachers once (by checksum), then every run's student.
    const rows: string[] = [];
    const seen = new Set<string>();
    for (const r of runs) {
      for (const m of r.models) {
        if (m.role === 'teacher') {
          const key = m.checksum ?? m.source;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        // A teacher row names what was loaded (its file, and its input pipeline): several runs may use different teachers.
        const what = m.role === 'teacher' ? `<div class="src">${esc(m.source)}</div>` : '';
        rows.push(`<tr class="${m.role}"><td>${esc(m.role)}</td><td>${esc(m.name)}${what}</td><td>${m.role === 'teacher' ? '–' : esc(r.method)}</td><td>${pct(m.accuracy)}</td><td>${pct(m.agreement)}</td><td>${num(m.ece)}</td><td>${num(m.nll)}</td><td>${m.parameters === null ? '–' : m.parameters.toLocaleString('en-US')}</td><td>${bytes(m.fileBytes)}</td><td>${m.msPerSample === null ? '–' : m.msPerSample.toFixed(3)}</td></tr>`);
      }
      if (r.models.length === 0) {
        // A run still training: its latest evaluation stands in for the final one.
        const ev = r.epochs.eval;
        const last = (k: string): number | null => { const a = ev[k]; return a && a.length ? a[a.length - 1]! : null; };
        rows.push(`<tr class="student running"><td>student</td><td>${esc(r.name)} (epoch ${r.epochs.epoch.length ? r.epochs.epoch[r.epochs.epoch.length - 1] : 0}, ${esc(r.status)})</td><td>${esc(r.method)}</td><td>${pct(last('accuracy'))}</td><td>${pct(last('agreement'))}</td><td>${num(last('ece'))}</td><td>${num(last('nll'))}</td><td>–</td><td>–</td><td>–</td></tr>`);
      }
    }
    set('table', `<table><thead><tr><th>role</th><th>model</th><th>method</th><th>accuracy</th><th>agreement</th><th>ECE</th><th>NLL</th><th>parameters</th><th>file size</th><th>ms / sample</th></tr></thead><tbody>${rows.join('')}</tbody></table>`);

    set('multilabel', multiLabelSection(runs));
    set('int8', int8Section(runs));
    set('images', imagesSection(runs));

    // Curves: one chart per loss term and per metric, runs overlaid.
    const terms: string[] = [];
    for (const r of runs) for (const k of Object.keys(r.steps.terms)) if (!terms.includes(k)) terms.push(k);
    const metrics: string[] = [];
    for (const r of runs) for (const k of Object.keys(r.epochs.eval)) if (!metrics.includes(k)) metrics.push(k);
    let curves = '';
    for (const t of terms) {
      const series: Series[] = [];
      runs.forEach((r, i) => {
        if (r.steps.terms[t]) series.push({ label: multi ? r.name : `${t} (steps)`, x: r.steps.step, y: r.steps.terms[t]!, color: color(i) });
        const ep = r.epochs.train[t];
        if (ep && !multi) series.push({ label: `${t} (epoch mean)`, x: r.epochs.step, y: ep, color: COLORS[(i + 3) % COLORS.length]!, dash: true });
      });
      curves += lineChart(`loss: ${t}`, series, 'step');
    }
    for (const k of metrics) {
      const percent = ['accuracy', 'top5', 'agreement'].includes(k);
      curves += lineChart(`test ${k}`, runs.map((r, i) => ({ label: r.name, x: r.epochs.epoch, y: r.epochs.eval[k] ?? [], color: color(i) })), 'epoch', { percent });
    }
    curves += lineChart('learning rate', runs.map((r, i) => ({ label: r.name, x: r.steps.step, y: r.steps.lr, color: color(i) })), 'step');
    set('curves', curves);

    let cms = '', rels = '';
    for (const r of runs) {
      for (const c of r.confusion) cms += confusionChart(multi ? `${r.name}: ${c.model}` : c.model, c.matrix, r.classNames);
      if (r.reliability.length) rels += reliabilityChart(multi ? `reliability: ${r.name}` : 'reliability diagram', r.reliability);
    }
    const none = runs.every((r) => r.multiLabel) ? '<p class="empty">not drawn for multi-label runs (see the per-label charts above)</p>' : '<p class="empty">computed when the run has saved its model</p>';
    set('confusion', cms || none);
    set('reliability', rels || none);
    set('experiments', runs.map((r) => `<h3>${esc(r.name)} <small>${esc(r.dir)}</small></h3><pre>${esc(r.experimentYaml)}</pre>`).join(''));
    document.body.setAttribute('data-rendered', String(Date.now()));
  }

  render(initial);
  if (live) {
    const poll = async (): Promise<void> => {
      try {
        const res = await fetch(live.url, { cache: 'no-store' });
        if (res.ok) render((await res.json()) as ReportData);
      } catch {
        // The server may be restarting; the next poll tries again.
      }
      setTimeout(() => { void poll(); }, live.everyMs);
    };
    setTimeout(() => { void poll(); }, live.everyMs);
  }
}
