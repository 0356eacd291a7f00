// `kdistill export`, `kdistill report` and `kdistill serve`: getting a trained student out of a
// run folder, as files, as a report page, and as a live view while it trains.
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isSweepFolder, writeSweepReport } from '../report/sweep.js';
import { exportStudent, type ExportFormat, type Int8Report } from '../export/index.js';
import { exportHf } from '../export/hf.js';
import { writeReport } from '../report/index.js';
import { serveRuns } from '../report/serve.js';

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      out: { type: 'string' }, format: { type: 'string', default: 'onnx,safetensors' }, opset: { type: 'string' }, 'no-verify': { type: 'boolean' },
      quantize: { type: 'string' }, calibrate: { type: 'string' }, web: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new Error('expects one run folder or model file, e.g. kdistill export runs/kd --out student/');
  const formats = values.format!.split(',').map((s) => s.trim()).filter(Boolean) as ExportFormat[];
  let opset: number | undefined;
  if (values.opset !== undefined) {
    opset = Number(values.opset);
    if (!Number.isInteger(opset)) throw new Error(`--opset must be an integer, got '${values.opset}'`);
  }
  if (values.quantize !== undefined && values.quantize !== 'int8') throw new Error(`--quantize takes int8, got '${values.quantize}'`);
  let calibrate: number | undefined;
  if (values.calibrate !== undefined) {
    calibrate = Number(values.calibrate);
    if (!Number.isInteger(calibrate) || calibrate < 1) throw new Error(`--calibrate must be a number of training samples (an integer ≥ 1), got '${values.calibrate}'`);
  }
  if (formats.includes('hf' as ExportFormat)) {
    // The Hugging Face folder is a layout of its own (onnx/model.onnx with Hugging Face's inputs,
    // onnx/model_quantized.onnx with --quantize int8), not an extra file.
    if (formats.length > 1) throw new Error(`--format hf writes a whole Hugging Face model folder; give it alone, got '${values.format}'`);
    const h = await exportHf(positionals[0]!, {
      ...(values.out ? { out: values.out } : {}), ...(opset !== undefined ? { opset } : {}), verify: !values['no-verify'],
      ...(values.quantize ? { quantize: 'int8' as const } : {}), ...(calibrate !== undefined ? { calibrate } : {}),
    });
    process.stdout.write(`exported a Hugging Face model folder (${h.labels.length} labels) to ${h.dir}:\n${h.files.map((f) => `  ${f}`).join('\n')}\n`);
    if (h.int8) process.stdout.write(int8Summary(h.int8));
    return 0;
  }
  const r = await exportStudent(positionals[0]!, {
    formats, ...(values.out ? { out: values.out } : {}), ...(opset !== undefined ? { opset } : {}), verify: !values['no-verify'],
    ...(values.quantize ? { quantize: 'int8' as const } : {}), ...(calibrate !== undefined ? { calibrate } : {}), ...(values.web ? { web: true } : {}),
  });
  process.stdout.write(`exported ${r.config.name} (${String(r.config.model.arch)}) to ${r.dir}:\n${r.files.map((f) => `  ${f}`).join('\n')}\n`);
  if (r.maxAbsDiff !== null) process.stdout.write(`onnxruntime-node vs kdistill on random inputs: max |diff| = ${r.maxAbsDiff.toExponential(2)}\n`);
  else if (r.note && r.config.onnx) process.stdout.write(`ONNX ${r.note}\n`);
  if (r.int8) {
    process.stdout.write(int8Summary(r.int8));
    // The run's report.html shows the INT8 numbers (read from export/int8.json): redraw it when that is where they went.
    const runDir = resolve(positionals[0]!);
    if (r.dir === join(runDir, 'export') && existsSync(join(runDir, 'report.html'))) process.stdout.write(`report: ${await writeReport([runDir], join(runDir, 'report.html'))} (with the INT8 numbers)\n`);
  }
  return 0;
}

/** The INT8 export's numbers: how it was quantized, size and batch-1 latency against float, and its check against kdistill. */
function int8Summary(q: Int8Report): string {
  const kb = (b: number): string => `${(b / 1024).toFixed(1)} KB`;
  const lines = [`INT8 (${q.method === 'qat' ? 'quantization-aware training' : `post-training, calibrated on ${q.calibrationSamples} training samples`}): ${q.file}`];
  lines.push(`  size: float ${kb(q.bytes.float)}, int8 ${kb(q.bytes.int8)}${q.bytes.float ? ` (${(q.bytes.int8 / q.bytes.float * 100).toFixed(0)} %)` : ''}`);
  // Median (p90) of single timed runs after a warm-up; files written before p90 was recorded show the median only.
  const lat = (m: { float: number; int8: number }, p90: { float: number; int8: number } | null | undefined, which: 'float' | 'int8'): string =>
    `${m[which].toFixed(3)} ms${p90 ? ` (p90 ${p90[which].toFixed(3)})` : ''}`;
  const runs = (t: { warmup: number; runs: number } | null | undefined): string => (t ? `median of ${t.runs} single runs after ${t.warmup} warm-up` : 'median');
  if (q.latencyMs) lines.push(`  batch-1 latency in onnxruntime-node (1 thread, ${runs(q.timing)}): float ${lat(q.latencyMs, q.latencyP90Ms, 'float')}, int8 ${lat(q.latencyMs, q.latencyP90Ms, 'int8')}`);
  const pct = (v: number): string => `${(v * 100).toFixed(2)} %`;
  if (q.check) {
    lines.push(`  vs kdistill's fake-quantized model on ${q.check.samples} test samples (one output step: ${q.check.outputStep.toExponential(2)}):`);
    for (const [what, c] of [['onnxruntime, graph optimisations off', q.check], ['onnxruntime, optimisations on (deployed)', q.check.optimized]] as const) {
      lines.push(`    ${what}: top-1 agreement ${pct(c.agreement)}, samples within one step ${pct(c.withinStep)}, max |diff| ${c.maxAbsDiff.toExponential(2)}`);
    }
  }
  if (q.web) {
    const w = q.web;
    if (w.latencyMs) {
      lines.push(`  batch-1 latency in onnxruntime-web ${w.version} (wasm, 1 thread, headless Chromium; ${runs(w.timing)}): float ${lat(w.latencyMs, w.latencyP90Ms, 'float')}, int8 ${lat(w.latencyMs, w.latencyP90Ms, 'int8')}`);
      if (w.timing?.coarse) lines.push(`    coarse: the page was not cross-origin isolated, so Chromium's clock resolved only ${w.timing.clockResolutionMs.toFixed(3)} ms`);
    }
    lines.push(`    onnxruntime-web, optimisations off: top-1 agreement ${pct(w.check.agreement)}, samples within one step ${pct(w.check.withinStep)}, max |diff| ${w.check.maxAbsDiff.toExponential(2)}`);
    lines.push(`    onnxruntime-web, optimisations on (deployed): top-1 agreement ${pct(w.check.optimized.agreement)}, max |diff| ${w.check.optimized.maxAbsDiff.toExponential(2)}`);
    if (w.check.float) lines.push(`    float model.onnx in onnxruntime-web vs kdistill's float model: top-1 agreement ${pct(w.check.float.agreement)}, max |diff| ${w.check.float.maxAbsDiff.toExponential(2)}`);
  }
  if (q.note) lines.push(`  ${q.note}`);
  return lines.join('\n') + '\n';
}

export async function reportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string' } } });
  if (positionals.length === 0) throw new Error('expects run folders, e.g. kdistill report runs/scratch runs/kd --out compare.html');
  const out = values.out ?? (positionals.length === 1 ? `${positionals[0]!.replace(/\/+$/, '')}/report.html` : 'report.html');
  // A sweep folder's report is its trial table and metric-against-parameter plots.
  const file = positionals.length === 1 && isSweepFolder(positionals[0]!) ? writeSweepReport(positionals[0]!, out) : await writeReport(positionals, out);
  process.stdout.write(`report: ${file}\n`);
  return 0;
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { port: { type: 'string', default: '8765' } } });
  if (positionals.length === 0) throw new Error('expects run folders, e.g. kdistill serve runs/kd --port 8765');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer in 0..65535, got '${values.port}'`);
  const { server, url } = await serveRuns(positionals, { port });
  process.stdout.write(`kdistill serve: ${url} (loopback only; Ctrl-C to stop)\n`);
  await new Promise<void>((res) => {
    const stop = (): void => { server.close(() => res()); server.closeAllConnections(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
