// src/run: where an experiment becomes a run (docs/architecture.md). runExperimentFile is the
// entry for a file: one experiment, or every stage of a chain file.
import { isChainDocument, loadExperiment, readExperimentDocument } from '../config/experiment.js';
import { runExperiment, type ExperimentResult, type RunOptions } from './experiment.js';
import { runChainFile } from './chain.js';

export { runExperiment, prepareData, loadTeachers, checkTeacherOnTransfer, pct, num } from './experiment.js';
export type { RunOptions, ExperimentResult, FinishedRun, PreparedData, TeacherCheck, GivenParts } from './experiment.js';
export { runChain, runChainFile, planChain, type ChainResult } from './chain.js';
export { compare, meanStd, type CompareRow } from './compare.js';
export { sweep, planSweep, trialTable, type SweepOptions, type SweepResult, type SweepRecord, type TrialRow } from './sweep.js';

/** Runs an experiment file, or every stage of a chain file (a top-level `stages:` list). */
export async function runExperimentFile(file: string, o: RunOptions): Promise<ExperimentResult> {
  if (isChainDocument(readExperimentDocument(file).raw)) {
    if (o.distributed) throw new Error(`${file}: a chain file cannot run data-parallel (yet); run its stages as separate experiments with --nproc`);
    return runChainFile(file, o);
  }
  return runExperiment(loadExperiment(file, o.overrides), o);
}
export { runSpecialists, type SpecialistsResult } from './specialists.js';
