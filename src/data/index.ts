// The data layer: readers, splits, augmentation and loaders.
export type { Dataset, DataSourceFile } from './dataset.js';
export { sampleSize } from './dataset.js';
export { DataError, fileSha256 } from './errors.js';
export { readIdx, decodeIdx, encodeIdx, type IdxArray, type IdxDType } from './idx.js';
export { loadFashionMnist, loadMnist, FASHION_MNIST_CLASSES, MNIST_CLASSES, type MnistOptions } from './fashion-mnist.js';
export { readCsv, parseCsv, loadLetterRecognition, LETTER_CLASSES, type CsvOptions } from './csv.js';
export { readNpy, decodeNpy, encodeNpy, writeNpy, readNpyDataset, type NpyArray, type NpyDType } from './npy.js';
export { split, subset, take, type SplitOptions, type Splits } from './splits.js';
export { Rng, type RngState } from './rng.js';
export { randomCrop, horizontalFlip, normalize, compose, applyAugmentations, type Augmentation, type AugmentSpec, type AugmentFn } from './augment.js';
export { DataLoader, type DataLoaderOptions, type Batch } from './loader.js';
