// `kdistill adjust-bias <run> --classes 3 [--offset fit|N]`: the output-bias adjustment of Hinton et
// al. (2015) §3 (src/train/bias.ts) on a finished run. The original model is kept as
// model.unadjusted.safetensors; model.safetensors becomes the adjusted one, and result.json gets the
// adjusted test metrics and a biasAdjustment record, as a run with `biasAdjust:` in its file has.
import { parseArgs } from 'node:util';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, saveModel } from '../nn/safetensors.js';
import { ZooModel } from '../nn/zoo/common.js';
import { prepareData, pct } from '../run/experiment.js';
import { biasAdjustRun } from '../train/bias.js';
import { formatTable } from '../train/table.js';
import { atomicWrite } from '../util/fs.js';
import { runExperimentOf } from '../report/data.js';

export function adjustBiasCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { classes: { type: 'string' }, offset: { type: 'string', default: 'fit' } },
  });
  if (positionals.length !== 1) throw new Error('expects one run folder, e.g. kdistill adjust-bias runs/omit3 --classes 3');
  const dir = positionals[0]!;
  if (!values.classes) throw new Error('--classes is required: the class ids whose output bias gets the offset, e.g. --classes 3 or --classes 7,8');
  const classes = values.classes.split(',').map((s) => Number(s.trim()));
  if (classes.some((k) => !Number.isInteger(k) || k < 0)) throw new Error(`--classes must be comma-separated class ids (integers ≥ 0), got '${values.classes}'`);
  const offset = values.offset === 'fit' ? 'fit' as const : Number(values.offset);
  if (offset !== 'fit' && !Number.isFinite(offset)) throw new Error(`--offset must be 'fit' or a number, got '${values.offset}'`);
  const modelFile = join(dir, 'model.safetensors'), resultFile = join(dir, 'result.json');
  if (!existsSync(modelFile) || !existsSync(resultFile)) throw new Error(`${dir} has no model.safetensors and result.json (has the run finished?)`);
  const result = JSON.parse(readFileSync(resultFile, 'utf8')) as Record<string, unknown>;
  if (result.biasAdjustment) throw new Error(`${dir}: the model is already bias-adjusted (result.json has biasAdjustment); adjust model.unadjusted.safetensors in a copy of the folder instead`);
  const e = runExperimentOf(dir);
  if (!e) throw new Error(`${dir}: no experiment.yaml or run.json, so its data is unknown`);
  const data = prepareData({ ...e, output: dir });
  if (offset === 'fit' && !data.val) throw new Error(`${dir}: --offset fit needs the run's validation split (data.heldOut with transfer 'train'); give the offset as a number instead`);
  const { model, metadata } = loadModel(modelFile);
  if (!(model instanceof ZooModel)) throw new Error(`${modelFile} is not a zoo model`);
  const { record, test } = biasAdjustRun(model, { classes, offset }, data.test, data.val);
  copyFileSync(modelFile, join(dir, 'model.unadjusted.safetensors'));
  saveModel(modelFile, model, metadata);
  atomicWrite(resultFile, JSON.stringify({ ...result, test, biasAdjustment: record }, null, 2) + '\n');
  process.stdout.write(formatTable(['model', 'test acc', 'errors', `errors on class ${classes.join('+')}`, 'offset'], [
    ['before', pct(record.testBefore.accuracy), String(Math.round((1 - record.testBefore.accuracy) * data.test.size)), `${record.classErrorsBefore} of ${record.classSamples}`, '–'],
    ['after', pct(test.accuracy), String(Math.round((1 - test.accuracy) * data.test.size)), `${record.classErrorsAfter} of ${record.classSamples}`, record.offset.toFixed(3)],
  ]) + `\noffset ${offset === 'fit' ? `fitted on ${record.fittedOn}` : 'given'}; model.safetensors is the adjusted model, model.unadjusted.safetensors the original\n`);
  return 0;
}
