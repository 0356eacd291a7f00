#!/usr/bin/python3
"""How far apart the two cached teacher signals of this experiment are: the teacher's logits on
each augmented view (the view cache, what `views` and `off` train on) against its logits on the
clean image (the plain cache, what `on` trains on), over every view of every sample both files
hold (the union of the three seeds' training subsets, 10 epochs of views each).

Prints: the teacher's top-1 accuracy on the clean images and on the views, how often its top-1
class on a view differs from the one on the clean image, and the mean KL(p_view || p_clean) and
total-variation distance of the softened distributions at the temperatures the experiment uses.

  /usr/bin/python3 experiments/view-cache/teacher_signals.py [cache folder, default runs/view-cache/.cache]
"""
import glob
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'bench', 'python'))
from _common import fashion_mnist_train_uint8, read_safetensors  # noqa: E402

folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', '..', 'runs', 'view-cache', '.cache')
views_files = glob.glob(os.path.join(folder, 'fashion-mnist_train-views-*.safetensors'))
plain_files = [f for f in glob.glob(os.path.join(folder, 'fashion-mnist_train-*.safetensors')) if '-views-' not in f]
if len(views_files) != 1 or len(plain_files) != 1:
    sys.exit(f'{folder}: expected one view-cache file and one plain cache file, found {len(views_files)} and {len(plain_files)} (run run.sh first)')
views, plain = read_safetensors(views_files[0]), read_safetensors(plain_files[0])

# Align the two files on the samples both hold (both list source-dataset indices in ascending order).
vi, pi = views['indices'].long(), plain['indices'].long()
common = torch.tensor(sorted(set(vi.tolist()) & set(pi.tolist())), dtype=torch.long)
if len(common) == 0:
    sys.exit('the two cache files share no samples')
zv = views['logits'].float()[:, torch.searchsorted(vi, common)]  # [E, M, C]
zc = plain['logits'].float()[torch.searchsorted(pi, common)]      # [M, C]
E, M, C = zv.shape
_, labels = fashion_mnist_train_uint8()
y = torch.from_numpy(labels.copy())[common]

print(f'{M} samples × {E} epochs of views ({E * M} views), {C} classes; files {os.path.basename(views_files[0])}, {os.path.basename(plain_files[0])}')
print(f'teacher top-1 accuracy: clean images {100 * (zc.argmax(1) == y).float().mean():.2f} %, '
      f'augmented views {100 * (zv.argmax(2) == y).float().mean():.2f} %')
print(f'top-1 class on the view differs from the one on the clean image: {100 * (zv.argmax(2) != zc.argmax(1)).float().mean():.2f} % of views')
for T in (1.0, 4.587, 6.034):
    lp_v = torch.log_softmax(zv / T, 2)
    lp_c = torch.log_softmax(zc / T, 1).expand_as(lp_v)
    kl = (lp_v.exp() * (lp_v - lp_c)).sum(2)
    tv = 0.5 * (lp_v.exp() - lp_c.exp()).abs().sum(2)
    print(f'T = {T:g}: KL(p_view || p_clean) mean {kl.mean():.4f} (median {kl.median():.4f}, 99th percentile {kl.quantile(0.99):.4f}); '
          f'total variation mean {tv.mean():.4f}')
