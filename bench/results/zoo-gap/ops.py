import torch, resource, json, torch.nn.functional as F
torch.set_num_threads(1); torch.manual_seed(0)
x = torch.randn(128, 16, 32, 32); w = (torch.randn(16, 16, 3, 3) * 0.1).requires_grad_()
g, b, rm, rv = torch.ones(16), torch.zeros(16), torch.zeros(16), torch.ones(16)
cases = {
  'conv_fwd': lambda: F.conv2d(x, w, None, padding=1),
  'conv_fwd_bwd': lambda: F.conv2d(x, w, None, padding=1).sum().backward(),
  'bn_train': lambda: F.batch_norm(x, rm, rv, g, b, True),
  'relu_add': lambda: F.relu(x).add(x),
}
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return (r.ru_utime + r.ru_stime) * 1000
out = {}
for k, f in cases.items():
    for _ in range(3): f()
    n = 20; t = cpu()
    for _ in range(n): f()
    out[k] = '%.3f' % ((cpu() - t) / n)
print('pytorch', json.dumps(out))
