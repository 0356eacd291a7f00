// Writing reports: report.html (+ report.json, the cached evaluation) at the end of every run,
// and `kdistill report <runs...>`, one page comparing several runs.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Module } from '../nn/module.js';
import type { Dataset } from '../data/dataset.js';
import type { Teacher } from '../teachers/teacher.js';
import type { Experiment } from '../config/experiment.js';
import { atomicWrite } from '../util/fs.js';
import { buildRunReport, evaluateRun, readCurves, teacherFiles, type EvaluationInput } from './data.js';
import { renderReportHtml } from './html.js';
import type { ReportData, RunReport } from './types.js';

export { renderReportHtml } from './html.js';
export { buildRunReport, curvesFromRecords, readCurves } from './data.js';
export type { ReportData, RunReport } from './types.js';

const now = (): string => new Date().toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

/** Called by the experiment runner once model.safetensors is saved: evaluates and writes report.html. */
export function writeRunReport(o: {
  dir: string; experiment: Experiment; student: Module; teacher: Teacher | null; test: Dataset;
} & Pick<EvaluationInput, 'val' | 'predictions' | 'studentMsPerSample' | 'studentMultiLabel'>): string {
  const { dir: runDir, experiment: e, ...input } = o;
  const dir = resolve(runDir);
  const ev = evaluateRun({ ...input, studentName: `student (${e.name})`, studentFile: join(dir, 'model.safetensors'), teacherFiles: teacherFiles(e) });
  const run: RunReport = {
    name: e.name, dir, method: e.method.name, status: 'finished', ...readCurves(dir), ...ev, experimentYaml: e.source,
  };
  // report.json first: its mtime after model.safetensors marks the cached evaluation as current.
  atomicWrite(join(dir, 'report.json'), JSON.stringify(run) + '\n');
  const file = join(dir, 'report.html');
  atomicWrite(file, renderReportHtml({ title: `kdistill report: ${e.name}`, generated: now(), runs: [run] }));
  return file;
}

/** One page for one or several run folders (evaluating any run without a current report.json). */
export async function writeReport(dirs: string[], out: string): Promise<string> {
  if (dirs.length === 0) throw new Error('report: give at least one run folder');
  const runs: RunReport[] = [];
  for (const d of dirs) {
    // A folder with none of a run's records would otherwise be reported as a run still "running".
    const missing = ['run.json', 'log.jsonl', 'model.safetensors'].filter((f) => !existsSync(join(d, f)));
    if (existsSync(d) && missing.length === 3) {
      throw new Error(`report: ${d} holds no kdistill run: it has no ${missing.join(', ')} (what a run writes to its 'output' folder); give the folder a train/distill run wrote, or start one there`);
    }
    runs.push(await buildRunReport(d));
  }
  const data: ReportData = {
    title: runs.length === 1 ? `kdistill report: ${runs[0]!.name}` : `kdistill report: ${runs.map((r) => r.name).join(' vs ')}`,
    generated: now(), runs,
  };
  atomicWrite(out, renderReportHtml(data));
  return resolve(out);
}
