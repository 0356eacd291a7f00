// `kdistill eval <run-dir | model.safetensors>`: test-set metrics of a saved model, optionally with
// its agreement with a teacher. A run folder is evaluated on its own experiment's test data (any
// dataset, text and multi-label included, with the run's tokenizer); a bare model file on
// Fashion-MNIST or MNIST.
import { parseArgs } from 'node:util';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../nn/safetensors.js';
import type { Dataset } from '../data/dataset.js';
import { loadFashionMnist, loadMnist } from '../data/fashion-mnist.js';
import { predict } from '../train/evaluate.js';
import { classificationMetrics } from '../train/metrics.js';
import { recordedTraining } from '../teachers/sources.js';
import { loadTeacherFile, teacherKindOf } from '../teachers/from-file.js';
import { withInputPipeline, type Normalization } from '../teachers/pipeline.js';
import { normalizeDataset } from '../data/augment.js';
import type { Teacher } from '../teachers/teacher.js';
import { formatTable } from '../train/table.js';
import { loadTeachers, onnxTeacher, pct, num, prepareData } from '../run/experiment.js';
import { inferenceMsPerSample } from '../train/timing.js';
import { evaluateMultiLabel } from '../train/multilabel-metrics.js';
import { runExperimentOf } from '../report/data.js';
import type { MultiLabelDataset } from '../text/data.js';

interface EvalData { test: Dataset; val?: Dataset; multiLabel: boolean; teacher: Teacher | null }

/** A --teacher file (checkpoint, ONNX or TorchScript), fed the student's inputs mapped to its own recorded ones (src/teachers/pipeline.ts). */
function teacherFromFile(file: string, studentInputs: Normalization | undefined, numClasses: number): Teacher {
  const t = loadTeacherFile(file, numClasses);
  return withInputPipeline(t, studentInputs, t.inputNormalization);
}

/** The run's own test data, as the student sees it (and, without --teacher, its teacher for agreement). */
function runData(dir: string, teacherFile: string | undefined): EvalData {
  const e = runExperimentOf(dir);
  if (!e) throw new Error(`${dir}: no experiment.yaml or run.json, so its data is unknown; evaluate the model file with --data`);
  // An ONNX --teacher on text reads the texts through its own tokenizer, as in a run (the data keeps them for it).
  const onnx = teacherFile !== undefined && teacherKindOf(teacherFile) === 'onnx';
  const data = prepareData({ ...e, output: dir, ...(onnx ? { teachers: [{ onnx: teacherFile }] } : {}) });
  const teacher = onnx && data.tokenizer ? onnxTeacher({ onnx: teacherFile, numClasses: data.numClasses }, data.texts ? { tokenizer: data.tokenizer, texts: data.texts } : { tokenizer: data.tokenizer })
    : teacherFile ? teacherFromFile(teacherFile, e.data.normalize, data.numClasses) : loadTeachers(e, data.numClasses, undefined, data);
  return { test: data.test, ...(data.val ? { val: data.val } : {}), multiLabel: data.multiLabel === true, teacher };
}

/** A bare model file on an image test set, normalised as the model's run recorded (raw if it recorded none). */
function imageData(name: string | undefined, dir: string | undefined, teacherFile: string | undefined, modelFile: string, metadata: Record<string, string>): EvalData {
  if (name !== 'fashion-mnist' && name !== 'mnist') throw new Error(`--data must be fashion-mnist or mnist, got '${name}' (for other data, evaluate the run folder)`);
  const inputs = recordedTraining(modelFile, metadata).normalize;
  const test = normalizeDataset((name === 'mnist' ? loadMnist : loadFashionMnist)({ split: 'test', ...(dir ? { dir } : {}) }), inputs);
  return { test, multiLabel: false, teacher: teacherFile ? teacherFromFile(teacherFile, inputs, test.numClasses) : null };
}

export function evalCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { data: { type: 'string' }, teacher: { type: 'string' }, 'data-dir': { type: 'string' } },
  });
  if (positionals.length !== 1) throw new Error('expects one run folder or model file, e.g. kdistill eval runs/kd (or runs/kd/model.safetensors)');
  const target = positionals[0]!;
  if (!existsSync(target)) throw new Error(`${target} not found`);
  const isDir = statSync(target).isDirectory();
  const file = isDir ? join(target, 'model.safetensors') : target;
  if (!existsSync(file)) throw new Error(`${target} has no model.safetensors yet (has the run finished?)`);
  if (isDir && values.data) throw new Error('--data applies to a model file; a run folder is evaluated on its own experiment\'s data');
  const { model, metadata } = loadModel(file);
  const d = isDir ? runData(target, values.teacher) : imageData(values.data ?? 'fashion-mnist', values['data-dir'], values.teacher, file, metadata);
  model.eval();
  const ms = inferenceMsPerSample((x) => model.call(x), d.test);
  const size = kib(statSync(file).size);
  if (d.multiLabel) {
    const val = d.val as MultiLabelDataset, test = d.test as MultiLabelDataset;
    const rows = [[file, String(model.numInferenceParameters()), size, ...multiLabelCells(evaluateMultiLabel(model, val, test)), ms.toFixed(3)]];
    if (d.teacher) rows.push([`teacher: ${d.teacher.description}`, String(d.teacher.numParameters), '–', ...multiLabelCells(evaluateMultiLabel((x) => d.teacher!.logits(x), val, test)), '–']);
    process.stdout.write(formatTable(['model', 'params', 'size', 'micro F1', 'macro F1', 'subset acc', 'mAP', 'threshold', 'ms/sample'], rows) + '\n');
    return 0;
  }
  const p = predict((x) => model.call(x), d.test);
  const tp = d.teacher ? predict((x) => d.teacher!.logits(x), d.test) : undefined;
  if (tp && tp.c !== p.c) throw new Error(`teacher ${d.teacher!.description} predicts ${tp.c} classes, the model ${p.c}: agreement needs a teacher of the same classes`);
  const m = classificationMetrics(p, d.test.y!, tp);
  const rows = [[file, String(model.numInferenceParameters()), size, pct(m.accuracy), pct(m.top5), num(m.nll), num(m.ece), pct(m.agreement), ms.toFixed(3)]];
  // The teacher's own score on the same data, the first thing to check when preprocessing may differ.
  if (tp) {
    const t = classificationMetrics(tp, d.test.y!);
    rows.push([`teacher: ${d.teacher!.description}`, String(d.teacher!.numParameters), '–', pct(t.accuracy), pct(t.top5), num(t.nll), num(t.ece), '–', '–']);
  }
  process.stdout.write(formatTable(['model', 'params', 'size', 'test acc', 'top-5', 'NLL', 'ECE', 'agreement', 'ms/sample'], rows) + '\n');
  return 0;
}

function multiLabelCells(m: { microF1: number; macroF1: number; subsetAccuracy: number; mAP: number; threshold: number }): string[] {
  return [num(m.microF1), num(m.macroF1), pct(m.subsetAccuracy), num(m.mAP), m.threshold.toFixed(2)];
}

export const kib = (bytes: number): string => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);
