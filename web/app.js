// The browser demo: the exported student and teacher (ONNX) run in onnxruntime-web (wasm, one
// thread, so no cross-origin-isolation headers are needed) on a drawn or picked 28×28 image.
// models.json (written by scripts/build-web.mjs) says how each model wants its input; a student
// with an INT8 model can be switched to it (#precision).
import * as ort from './ort.wasm.min.mjs';

ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL('./', import.meta.url).href;

const status = document.getElementById('status');
const pad = document.getElementById('pad');
const ctx = pad.getContext('2d');
const small = Object.assign(document.createElement('canvas'), { width: 28, height: 28 });
const sctx = small.getContext('2d', { willReadFrequently: true });

const [models, samples] = await Promise.all([fetch('models.json').then((r) => r.json()), fetch('samples.json').then((r) => r.json())]);
const sessions = {};
for (const role of ['student', 'teacher']) {
  if (models[role]) sessions[role] = await ort.InferenceSession.create(models[role].file, { executionProviders: ['wasm'] });
}
// The student's INT8 model (when build-web exported one): the select switches the student between the two.
const precision = document.getElementById('precision');
if (models.student.int8) {
  sessions.studentInt8 = await ort.InferenceSession.create(models.student.int8.file, { executionProviders: ['wasm'] });
  const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
  precision.querySelector('option[value=float]').textContent = `float32 (${kib(models.student.bytes)})`;
  precision.querySelector('option[value=int8]').textContent = `INT8, ${models.student.int8.method === 'qat' ? 'quantization-aware' : 'post-training'} (${kib(models.student.int8.bytes)})`;
  precision.hidden = false;
}
let last = null;
precision.addEventListener('change', () => { if (last) void classify(last); });
const classes = models.classes;
status.textContent = `student: ${models.student.name} (${models.student.parameters.toLocaleString('en-US')} parameters)` +
  (models.teacher ? ` · teacher: ${models.teacher.name} (${models.teacher.parameters.toLocaleString('en-US')} parameters)` : '') + ' · onnxruntime-web ' + ort.env.versions.web;

/** pixels: 784 values in [0, 1]; each model applies its own normalisation. */
async function classify(pixels) {
  last = pixels;
  for (const role of ['student', 'teacher']) {
    const el = document.getElementById(`${role}-result`);
    if (!sessions[role]) { el.hidden = true; continue; }
    const int8 = role === 'student' && precision.value === 'int8' && sessions.studentInt8;
    const m = models[role];
    const x = new Float32Array(pixels.length);
    const per = pixels.length / m.inputShape[0];
    for (let i = 0; i < pixels.length; i++) {
      const c = Math.floor(i / per);
      x[i] = m.normalization ? (pixels[i] - m.normalization.mean[c]) / m.normalization.std[c] : pixels[i];
    }
    const t0 = performance.now();
    const out = await (int8 ? sessions.studentInt8 : sessions[role]).run({ [m.input]: new ort.Tensor('float32', x, [1, ...m.inputShape]) });
    const ms = performance.now() - t0;
    const logits = out[m.output].data;
    const mx = Math.max(...logits);
    const e = Array.from(logits, (v) => Math.exp(v - mx));
    const s = e.reduce((a, b) => a + b, 0);
    const top = e.map((v, i) => [i, v / s]).sort((a, b) => b[1] - a[1]).slice(0, 3);
    el.querySelector('h2').textContent = `${role}${int8 ? ' (INT8)' : ''}: ${m.name} (${ms.toFixed(1)} ms)`;
    el.dataset.model = int8 ? 'int8' : 'float';
    el.querySelector('.bars').innerHTML = top.map(([i, p]) =>
      `<div class="bar"><span class="name">${classes[i]}</span><div class="fill" style="width:${Math.round(p * 150)}px"></div><span class="p">${(p * 100).toFixed(1)}%</span></div>`).join('');
    el.dataset.top1 = classes[top[0][0]];
  }
}

function drawPixels(pixels) {
  const img = sctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = Math.round(pixels[i] * 255);
    img.data.set([v, v, v, 255], i * 4);
  }
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, 280, 280);
}

/** The drawing, averaged down to 28×28 grey levels (what the models were trained on). */
function padPixels() {
  sctx.imageSmoothingEnabled = true;
  sctx.clearRect(0, 0, 28, 28);
  sctx.drawImage(pad, 0, 0, 28, 28);
  const d = sctx.getImageData(0, 0, 28, 28).data;
  const px = new Float32Array(784);
  for (let i = 0; i < 784; i++) px[i] = d[i * 4] / 255;
  return px;
}

function clearPad() {
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, 280, 280);
}
clearPad();

let drawing = false;
pad.addEventListener('pointerdown', (ev) => {
  drawing = true;
  pad.setPointerCapture(ev.pointerId);
  ctx.strokeStyle = '#fff'; ctx.lineWidth = 22; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  ctx.beginPath(); ctx.moveTo(ev.offsetX, ev.offsetY);
  document.querySelectorAll('.sample.sel').forEach((s) => s.classList.remove('sel'));
  document.getElementById('truth').textContent = '';
});
pad.addEventListener('pointermove', (ev) => {
  if (!drawing) return;
  ctx.lineTo(ev.offsetX, ev.offsetY); ctx.stroke();
});
const finish = () => { if (drawing) { drawing = false; void classify(padPixels()); } };
pad.addEventListener('pointerup', finish);
pad.addEventListener('pointerleave', finish);
document.getElementById('clear').addEventListener('click', clearPad);

const grid = document.getElementById('samples');
samples.forEach((s, k) => {
  const c = Object.assign(document.createElement('canvas'), { width: 28, height: 28, className: 'sample', title: classes[s.label] });
  c.dataset.index = String(k);
  c.dataset.label = classes[s.label];
  const px = Float32Array.from(atob(s.pixels), (ch) => ch.charCodeAt(0) / 255);
  const img = c.getContext('2d').createImageData(28, 28);
  for (let i = 0; i < 784; i++) { const v = Math.round(px[i] * 255); img.data.set([v, v, v, 255], i * 4); }
  c.getContext('2d').putImageData(img, 0, 0);
  c.addEventListener('click', () => {
    document.querySelectorAll('.sample.sel').forEach((e) => e.classList.remove('sel'));
    c.classList.add('sel');
    drawPixels(px);
    document.getElementById('truth').textContent = `true class: ${classes[s.label]}`;
    // The picked image's exact pixels, not the canvas's rescaled copy.
    void classify(px);
  });
  grid.appendChild(c);
});
document.body.dataset.ready = '1';
