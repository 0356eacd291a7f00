// What a teacher file really is, when its loader fails: the loaders' own errors ("not a ZIP
// archive", "Protobuf parsing failed", "constants.pkl") name their parser's symptom, not the
// mistake (a state_dict given as TorchScript, a text file given as ONNX). The first bytes tell.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const MAKE = {
  torchscript: "a TorchScript teacher is made in Python with torch.jit.script(model).save('teacher.pt') (or torch.jit.trace(model, example_input).save(...))",
  onnx: "an ONNX teacher is made in Python with torch.onnx.export(model, example_input, 'teacher.onnx')",
};

/** n bytes from the start of the file, or (fromEnd) from its end. */
function bytesOf(path: string, n: number, fromEnd = false): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(n, size);
    const b = Buffer.alloc(len);
    return b.subarray(0, readSync(fd, b, 0, len, fromEnd ? size - len : 0));
  } finally {
    closeSync(fd);
  }
}

/** What the file looks like, from its first bytes; null when nothing recognisable. */
export function sniffFile(path: string): string | null {
  let b: Buffer;
  try {
    b = bytesOf(path, 4096);
  } catch {
    return null;
  }
  if (b.length === 0) return 'an empty file';
  if (b.subarray(0, 4).toString('latin1') === 'PK\x03\x04') {
    // torch.save and torch.jit.save both write ZIP archives; only TorchScript has constants.pkl and
    // code/. The central directory at the end lists every name.
    const names = bytesOf(path, 1 << 20, true).toString('latin1');
    return /constants\.pkl|\/code\//.test(names) ? 'a TorchScript archive' : 'a ZIP archive without TorchScript code: a PyTorch checkpoint saved with torch.save (a state_dict or a pickled model)';
  }
  if (b[0] === 0x80 && b[1]! >= 2 && b[1]! <= 5) return 'a Python pickle (a PyTorch checkpoint saved with torch.save in the legacy format)';
  if (b.subarray(0, 4).toString('latin1') === '\x89HDF') return 'an HDF5 file (e.g. a Keras model)';
  if (b.length >= 9) {
    const n = Number(b.readBigUInt64LE(0));
    if (n > 0 && n < 100_000_000 && b[8] === 0x7b) return 'a safetensors file (give it as teacher: {checkpoint: ...} if kdistill wrote it)';
  }
  const text = b.toString('utf8');
  // Mostly printable characters: text (YAML, CSV, a README, an HTML error page from a download).
  const printable = [...text].filter((c) => c >= ' ' || c === '\n' || c === '\r' || c === '\t').length;
  if (!text.includes('\uFFFD') && printable / [...text].length > 0.95) return `a text file (it begins "${text.slice(0, 40).replace(/\s+/g, ' ').trim()}")`;
  return null;
}

/** The loader's error, or (when the file is clearly something else) what it is and how to make the expected kind. */
export function wrongTeacherFile(path: string, expected: 'torchscript' | 'onnx', loaderMessage: string): string {
  const kind = sniffFile(path);
  const want = expected === 'torchscript' ? 'a TorchScript module' : 'an ONNX model';
  if (kind === null || (expected === 'torchscript' && kind === 'a TorchScript archive')) return `${path}: ${loaderMessage}`;
  return `${path} is not ${want}: it is ${kind}; ${MAKE[expected]}${expected === 'torchscript' && /torch\.save/.test(kind) ? ` (a state_dict holds only weights: load it into its model class first, or export it with torch.onnx.export and give it as {onnx: ...})` : ''}`;
}
