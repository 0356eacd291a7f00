// Builds the browser demo into web/dist/: the page (web/index.html, web/app.js), onnxruntime-web's
// wasm runtime from node_modules, the student and teacher exported to ONNX, and a few
// Fashion-MNIST test images. Needs the compiled sources (npm run build) and onnxruntime-web.
//
//   node scripts/build-web.mjs [--student runs/demo/kd] [--teacher assets/fashion-mnist-teacher.safetensors]
//                              [--out web/dist] [--samples 2] [--calibrate N]
// A quantization-aware student run also gets its INT8 model (student.int8.onnx), and so does a float
// run with --calibrate N (post-training quantization on N training images): the page switches
// between float and INT8.
// --student / --teacher take a run folder, a model .safetensors file or an .onnx file.
// Serve the folder over HTTP (wasm cannot load from file://), e.g. `npx http-server web/dist`
// or `python3 -m http.server -d web/dist`.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export async function buildWeb(o = {}) {
  const out = resolve(o.out ?? join(root, 'web', 'dist'));
  const student = o.student ?? join(root, 'runs', 'demo', 'kd');
  const teacher = o.teacher === undefined ? join(root, 'assets', 'fashion-mnist-teacher.safetensors') : o.teacher;
  const perClass = o.samples ?? 2;
  const log = o.quiet ? () => {} : (m) => process.stderr.write(`build-web: ${m}\n`);
  if (!existsSync(join(root, 'dist', 'src', 'export', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const { exportStudent } = await import(join(root, 'dist', 'src', 'export', 'index.js'));
  const { loadFashionMnist } = await import(join(root, 'dist', 'src', 'data', 'fashion-mnist.js'));
  mkdirSync(out, { recursive: true });

  // onnxruntime-web: the ESM entry for the wasm backend and the runtime it loads next to it.
  const { ortWebDir, ORT_WEB_FILES } = await import(join(root, 'dist', 'src', 'export', 'web.js'));
  const ortDir = ortWebDir();
  for (const f of ORT_WEB_FILES) copyFileSync(join(ortDir, f), join(out, f));
  for (const f of ['index.html', 'app.js']) copyFileSync(join(root, 'web', f), join(out, f));
  log(`onnxruntime-web ${JSON.parse(readFileSync(join(ortDir, '..', 'package.json'), 'utf8')).version} copied`);

  const models = {};
  for (const [role, src] of [['student', student], ['teacher', teacher]]) {
    if (!src) continue;
    if (!existsSync(src)) {
      if (role === 'teacher' && o.teacher === undefined) { log(`no teacher at ${src}; the page shows the student only`); continue; }
      throw new Error(`${role} not found: ${src}${role === 'student' ? ' (run `kdistill demo` first, or pass --student)' : ''}`);
    }
    const file = `${role}.onnx`;
    if (src.endsWith('.onnx')) {
      copyFileSync(src, join(out, file));
      models[role] = { file, name: basename(src, '.onnx'), input: 'input', output: 'logits', inputShape: [1, 28, 28], normalization: null, parameters: 0, classes: null };
    } else {
      const tmp = join(out, `.${role}-export`);
      const { loadModel } = await import(join(root, 'dist', 'src', 'nn', 'safetensors.js'));
      const { quantizationOf } = await import(join(root, 'dist', 'src', 'nn', 'quantize.js'));
      const isRun = statSync(src).isDirectory();
      const { model } = loadModel(isRun ? join(src, 'model.safetensors') : src);
      const parameters = model.numParameters();
      // The student's INT8 model too (the page switches between the two): a quantization-aware run's,
      // or a float run's post-training quantization with --calibrate N. Export reads the run's data for it.
      const qat = quantizationOf(model) !== null;
      const int8 = role === 'student' && isRun && (qat || o.calibrate !== undefined);
      model.dispose();
      const r = await exportStudent(src, {
        out: tmp, formats: ['onnx'], verify: false,
        ...(int8 ? { quantize: 'int8', ...(qat ? {} : { calibrate: o.calibrate }) } : {}),
      });
      copyFileSync(join(tmp, 'model.onnx'), join(out, file));
      const c = r.config;
      models[role] = {
        file, name: c.name, input: c.onnx.input, output: c.onnx.output, inputShape: c.inputShape, normalization: c.normalization, parameters, classes: c.classes, arch: c.model.arch,
        bytes: statSync(join(out, file)).size,
      };
      if (r.int8) {
        copyFileSync(r.int8.file, join(out, `${role}.int8.onnx`));
        models[role].int8 = { file: `${role}.int8.onnx`, method: r.int8.method, bytes: r.int8.bytes.int8 };
      }
      rmSync(tmp, { recursive: true, force: true });
    }
    log(`${role}: ${src} → ${file}`);
  }
  if (!models.student) throw new Error('no student to show');
  const test = loadFashionMnist({ split: 'test' });
  models.classes = test.classNames;
  // The first few test images of every class, as base64 bytes (0..255).
  const samples = [];
  const per = 28 * 28;
  for (let c = 0; c < test.numClasses; c++) {
    let found = 0;
    for (let i = 0; i < test.size && found < perClass; i++) {
      if (test.y[i] !== c) continue;
      const bytes = Buffer.from(Array.from(test.x.subarray(i * per, (i + 1) * per), (v) => Math.round(v * 255)));
      samples.push({ index: i, label: c, pixels: bytes.toString('base64') });
      found++;
    }
  }
  writeFileSync(join(out, 'models.json'), JSON.stringify(models, null, 2) + '\n');
  writeFileSync(join(out, 'samples.json'), JSON.stringify(samples) + '\n');
  log(`${samples.length} sample images; open ${out}/index.html through a local HTTP server`);
  return { out, models, samples };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { student: { type: 'string' }, teacher: { type: 'string' }, out: { type: 'string' }, samples: { type: 'string' }, calibrate: { type: 'string' } } });
  try {
    await buildWeb({ ...values, ...(values.samples ? { samples: Number(values.samples) } : {}), ...(values.calibrate ? { calibrate: Number(values.calibrate) } : {}) });
  } catch (e) {
    process.stderr.write(`build-web: ${e.message}\n`);
    process.exit(1);
  }
}
