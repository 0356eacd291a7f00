// `kdistill eval <model.safetensors>`: test-set metrics of a saved model, optionally with its
// agreement with a teacher.
import { parseArgs } from 'node:util';
import { statSync } from 'node:fs';
import { loadModel } from '../nn/safetensors.js';
import { loadFashionMnist, loadMnist } from '../data/fashion-mnist.js';
import { predict } from '../train/evaluate.js';
import { classificationMetrics } from '../train/metrics.js';
import { checkpointTeacher } from '../teachers/sources.js';
import { formatTable } from '../train/table.js';
import { pct, num } from '../train/experiment.js';
import { inferenceMsPerSample } from '../train/timing.js';

export function evalCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { data: { type: 'string', default: 'fashion-mnist' }, teacher: { type: 'string' }, 'data-dir': { type: 'string' } },
  });
  if (positionals.length !== 1) throw new Error('expects one model file, e.g. kdistill eval runs/kd/model.safetensors');
  const file = positionals[0]!;
  if (values.data !== 'fashion-mnist' && values.data !== 'mnist') throw new Error(`--data must be fashion-mnist or mnist, got '${values.data}'`);
  const load = values.data === 'mnist' ? loadMnist : loadFashionMnist;
  const test = load({ split: 'test', ...(values['data-dir'] ? { dir: values['data-dir'] } : {}) });
  const { model } = loadModel(file);
  model.eval();
  const p = predict((x) => model.call(x), test);
  const teacher = values.teacher ? checkpointTeacher(values.teacher) : null;
  const tp = teacher ? predict((x) => teacher.logits(x), test) : undefined;
  const m = classificationMetrics(p, test.y!, tp);
  const ms = inferenceMsPerSample((x) => model.call(x), test);
  process.stdout.write(formatTable(
    ['model', 'params', 'size', 'test acc', 'top-5', 'NLL', 'ECE', 'agreement', 'ms/image'],
    [[file, String(model.numParameters()), kib(statSync(file).size), pct(m.accuracy), pct(m.top5), num(m.nll), num(m.ece), pct(m.agreement), ms.toFixed(3)]],
  ) + '\n');
  return 0;
}

export const kib = (bytes: number): string => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);
