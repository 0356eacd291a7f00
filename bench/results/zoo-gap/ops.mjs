const { torch } = await import('/work/wt/zoo-gap/dist/src/torch.js');
const F = await import('/work/wt/zoo-gap/dist/src/tensor/functional.js');
const { setNumThreads, manualSeed } = await import('/work/wt/zoo-gap/dist/src/tensor/torch.js');
const { tidy } = await import('/work/wt/zoo-gap/dist/src/tensor/scope.js');
setNumThreads(1); manualSeed(0);
const x = torch.randn([128, 16, 32, 32]).keep();
const w = torch.randn([16, 16, 3, 3]).mul(0.1).requiresGrad_(true).keep();
const g = torch.ones([16]).keep(), b = torch.zeros([16]).keep(), rm = torch.zeros([16]).keep(), rv = torch.ones([16]).keep();
console.log('x contiguous', x.isContiguous());
const cases = {
  conv_fwd: () => tidy(() => { F.conv2d(x, w, null, { padding: 1 }); }),
  conv_fwd_bwd: () => tidy(() => { F.conv2d(x, w, null, { padding: 1 }).sum().backward(); }),
  bn_train: () => tidy(() => { F.batchNorm(x, rm, rv, { weight: g, bias: b, training: true }); }),
  relu_add: () => tidy(() => { F.relu(x).add(x); }),
};
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const out = {};
for (const [k, f] of Object.entries(cases)) {
  for (let i = 0; i < 3; i++) f();
  const n = 20; const t = cpu(); for (let i = 0; i < n; i++) f(); out[k] = ((cpu() - t) / n).toFixed(3);
}
console.log('kdistill', JSON.stringify(out));
