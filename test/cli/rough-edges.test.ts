// Issue 14's CLI rough edges, each as a user meets it: per-command help and --version, negative
// numbers, `train` with a teacher, `methods`/`models` texts, `report` on a folder without a run,
// a diverging loss, a missing native addon, and a TorchScript teacher whose submodules are no chain
// (its submodule outputs are features all the same).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/tensor/native.js';
import { randn } from '../../src/tensor/factories.js';
import { TorchScriptTeacher } from '../../src/teachers/sources.js';

const BIN = join(packageRoot, 'bin', 'kdistill.js');
function kdistill(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, KDISTILL_QUIET: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const tmp = (p: string): string => mkdtempSync(join(tmpdir(), p));
const FIX = join(packageRoot, 'test', 'fixtures', 'reliability');

test('every command answers --help with its own usage, and --version names kdistill and libtorch', () => {
  for (const cmd of ['demo', 'train', 'distill', 'eval', 'compare', 'export', 'report', 'serve', 'specialists', 'methods', 'models']) {
    const r = kdistill(cmd, '--help');
    assert.equal(r.code, 0, `${cmd} --help: ${r.err}`);
    assert.match(r.out, new RegExp(`kdistill ${cmd}\\b`));
  }
  assert.match(kdistill('train', '--help').out, /--no-resume/);
  const v = kdistill('--version');
  assert.equal(v.code, 0);
  assert.match(v.out, /^kdistill \d+\.\d+\.\d+ \(libtorch \d+\.\d+/);
});

test('negative --seed / --epochs / --nproc get a validation error, not the parser\'s "ambiguous"', () => {
  for (const [flag, v, want] of [['--seed', '-5', /--seed must be an integer ≥ 0, got '-5'/], ['--epochs', '-1', /--epochs must be an integer ≥ 1/], ['--nproc', '-1', /--nproc must be an integer ≥ 1, got '-1'/]] as const) {
    const r = kdistill('distill', 'x.yaml', flag, v);
    assert.equal(r.code, 1);
    assert.match(r.err, want);
    assert.doesNotMatch(r.err, /ambiguous/);
  }
});

test('kdistill train refuses a file whose method would distill its teacher', () => {
  const dir = tmp('kd-train-teacher-');
  const exp = join(dir, 't.yaml');
  writeFileSync(exp, `data: {dataset: fashion-mnist, subset: 64, batchSize: 32}\nteacher: {checkpoint: ${join(packageRoot, 'assets', 'fashion-mnist-teacher.safetensors')}}\nstudent: {arch: mlp, hidden: [8]}\nepochs: 1\noutput: ${join(dir, 'out')}\n`);
  const r = kdistill('train', exp);
  assert.equal(r.code, 1);
  assert.match(r.err, /t\.yaml: has a teacher, so method 'kd' would distill it: run it with kdistill distill/);
});

test('kdistill methods shows structured parameters as YAML, says how teacher-less methods use a teacher, and lists chains and specialists', () => {
  const out = kdistill('methods').out;
  assert.match(out, /\n {4}pairs +\[\{student: stage2, teacher: stage2\}\] +list of pairs \| map /);
  assert.match(out, /multilabel-kd \(teacher optional/);
  assert.doesNotMatch(out, /multilabel-kd \(no teacher\)/);
  assert.match(out, /chains \(a file with a top-level `stages:` list/);
  assert.match(out, /specialists \(`kdistill specialists/);
  const models = kdistill('models').out;
  assert.doesNotMatch(models, /(inputShape|numClasses) .*\(required\)/);
  assert.match(models, /numClasses .*an experiment takes it from its data/);
});

test('kdistill report on a folder without a run fails naming the folder and what is missing', () => {
  const dir = tmp('kd-report-empty-');
  const r = kdistill('report', dir);
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`${dir} holds no kdistill run: it has no run\\.json, log\\.jsonl, model\\.safetensors`));
});

test('a learning rate that makes the loss explode warns on stderr, in result.json and in the summary', () => {
  const dir = tmp('kd-diverge-');
  const exp = join(dir, 'lr.yaml');
  writeFileSync(exp, `seed: 1\ndata: {dataset: fashion-mnist, subset: 256, batchSize: 64}\nstudent: {arch: mlp, hidden: [8]}\noptimizer: {name: sgd, lr: 1000000}\nepochs: 1\noutput: ${join(dir, 'out')}\n`);
  const r = kdistill('train', exp);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: lr: the training loss diverged: epoch 1's mean loss/);
  assert.match(r.out, /warning: lr: the training loss diverged/);
  const res = JSON.parse(readFileSync(join(dir, 'out', 'result.json'), 'utf8')) as { warnings?: string[] };
  assert.match(res.warnings?.[0] ?? '', /diverged/);
});

test('a missing native addon is a one-line message saying what to do', () => {
  // A copy of the package without build/: what a failed or skipped `npm install` leaves.
  const root = tmp('kd-noaddon-');
  for (const f of ['package.json', 'binding.gyp']) copyFileSync(join(packageRoot, f), join(root, f));
  mkdirSync(join(root, 'bin'));
  copyFileSync(BIN, join(root, 'bin', 'kdistill.js'));
  cpSync(join(packageRoot, 'dist', 'src'), join(root, 'dist', 'src'), { recursive: true });
  symlinkSync(join(packageRoot, 'node_modules'), join(root, 'node_modules'));
  const r = spawnSync(process.execPath, [join(root, 'bin', 'kdistill.js'), 'methods'], { encoding: 'utf8', env: { ...process.env, KDISTILL_DEBUG: '' } });
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^kdistill: the native addon is not built \(.*kdistill\.node is missing\): install libtorch .*npm install/);
});

test('a TorchScript teacher whose forward() flattens between its submodules still gives their outputs as features', () => {
  // five.pt flattens before its 'fc' layer; rgb32.pt flattens between 'conv' and 'fc'. Run as a
  // chain of submodules (the former approach) both failed; taken from forward()'s graph they work.
  const five = new TorchScriptTeacher(join(FIX, 'five.pt'), 5);
  const x = randn([2, 1, 28, 28]);
  const r = five.features(x, ['fc']);
  assert.ok(r.features.fc!.equal(r.output), "five.pt: 'fc' is the last call, so its output is the logits");
  const rgb = new TorchScriptTeacher(join(FIX, 'rgb32.pt'), 10);
  const x3 = randn([2, 3, 32, 32]);
  assert.deepEqual(rgb.features(x3, ['conv']).features.conv!.shape, [2, 4, 30, 30]);
  for (const t of [x, x3, r.output, r.features.fc!]) t.dispose();
});

test('a wrong file given as a TorchScript or ONNX teacher says what it is and how to make the expected kind', async () => {
  const { OnnxTeacher } = await import('../../src/teachers/onnx.js');
  const dir = tmp('kd-wrong-teacher-');
  const text = join(dir, 'teacher.pt');
  writeFileSync(text, 'name: teacher\nepochs: 3\n');
  // What torch.save(model.state_dict(), path) writes: a ZIP archive with data.pkl but no TorchScript code/ or constants.pkl.
  const stateDict = join(dir, 'state_dict.pt');
  writeFileSync(stateDict, Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(26), Buffer.from('archive/data.pkl\x80\x02}q\x00.PK\x01\x02archive/data.pklarchive/version', 'latin1')]));
  assert.throws(() => new TorchScriptTeacher(text, 10), /teacher\.pt is not a TorchScript module: it is a text file .*torch\.jit\.script\(model\)\.save\('teacher\.pt'\)/);
  assert.throws(() => new TorchScriptTeacher(stateDict, 10), /state_dict\.pt is not a TorchScript module: it is a ZIP archive without TorchScript code: a PyTorch checkpoint saved with torch\.save .*torch\.jit\.script/);
  assert.throws(() => new OnnxTeacher(text), /teacher\.pt is not an ONNX model: it is a text file .*torch\.onnx\.export\(model, example_input, 'teacher\.onnx'\)/);
  // A real TorchScript file that fails for another reason keeps the loader's message.
  assert.doesNotThrow(() => new TorchScriptTeacher(join(FIX, 'five.pt'), 5));
});

test('distill prints the teacher\'s own test accuracy as a row of the result table', () => {
  const dir = tmp('kd-teacher-row-');
  const exp = join(dir, 'd.yaml');
  writeFileSync(exp, `seed: 1\ndata: {dataset: fashion-mnist, subset: 128, batchSize: 64}\nteacher: {checkpoint: ${join(packageRoot, 'assets', 'fashion-mnist-teacher.safetensors')}}\nstudent: {arch: mlp, hidden: [8]}\noptimizer: {name: sgd, lr: 0.1}\nepochs: 1\noutput: ${join(dir, 'out')}\n`);
  const r = kdistill('distill', exp);
  assert.equal(r.code, 0, r.err);
  // The bundled teacher scores 92.66 % on the Fashion-MNIST test set (README).
  assert.match(r.out, /\n\| teacher +\| +– \| +824554 \| +92\.66% \|/);
});

test('eval --teacher takes ONNX and TorchScript teachers too, and prints the teacher\'s own accuracy', () => {
  const dir = tmp('kd-eval-teacher-');
  const teacher = join(packageRoot, 'assets', 'fashion-mnist-teacher.safetensors');
  const ex = kdistill('export', teacher, '--out', join(dir, 'onnx'), '--format', 'onnx', '--no-verify');
  assert.equal(ex.code, 0, ex.err);
  // The teacher evaluated against itself as an ONNX model: the same predictions, both rows 92.66 %.
  const r = kdistill('eval', teacher, '--teacher', join(dir, 'onnx', 'model.onnx'));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\| teacher: ONNX .*model\.onnx +\| +\d+ \| +– \| +92\.66% \|/);
  assert.match(r.out, /fashion-mnist-teacher\.safetensors .*\| +100\.00% \|/, 'agreement with its own export');
  // A TorchScript file is loaded as such (this one predicts 5 classes, which is caught).
  const ts = kdistill('eval', teacher, '--teacher', join(FIX, 'five.pt'));
  assert.equal(ts.code, 1);
  assert.match(ts.err, /teacher TorchScript .*five\.pt predicts 5 classes, the model 10/);
});

test('SIGINT during the teacher-cache build exits 130 with a message like training\'s, writing no cache file', async () => {
  const dir = tmp('kd-cache-sigint-');
  const exp = join(dir, 'c.yaml');
  writeFileSync(exp, `seed: 1\ndata: {dataset: fashion-mnist, batchSize: 64}\nteacher: {checkpoint: ${join(packageRoot, 'assets', 'fashion-mnist-teacher.safetensors')}}\n` +
    `teacherCache: {mode: on, dir: ${join(dir, 'cache')}}\nstudent: {arch: mlp, hidden: [8]}\noptimizer: {name: sgd, lr: 0.1}\nepochs: 1\noutput: ${join(dir, 'out')}\n`);
  // Not quiet: the cache's notice says when the build (60,000 samples, seconds) has started.
  const child = spawn(process.execPath, [BIN, 'distill', exp], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KDISTILL_QUIET: '' } });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    const first = !/computing the teacher/.test(err);
    err += d.toString();
    if (first && /computing the teacher/.test(err)) setTimeout(() => child.kill('SIGINT'), 300);
  });
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  assert.equal(code, 130, err);
  assert.match(err, /interrupted by SIGINT while building the teacher-output cache \(\d+ of 60000 samples computed\), before training started; nothing was written/);
  assert.ok(!existsSync(join(dir, 'cache')) || readdirSync(join(dir, 'cache')).length === 0, 'no cache file');
  assert.ok(!existsSync(join(dir, 'out', '.kdistill.lock')), 'the folder lock is released');
});
