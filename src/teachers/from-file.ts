// A teacher given as a bare file (`kdistill eval --teacher FILE`), by its kind: an ONNX model
// (.onnx), a kdistill checkpoint (.safetensors), else TorchScript (.pt and the like; a file of
// another kind gets the TorchScript loader's explanation of what it is instead).
import { extname } from 'node:path';
import type { Teacher } from './teacher.js';
import { checkpointTeacher, TorchScriptTeacher } from './sources.js';
import { OnnxTeacher } from './onnx.js';

export function loadTeacherFile(path: string, numClasses: number): Teacher {
  const ext = extname(path).toLowerCase();
  if (ext === '.onnx') return new OnnxTeacher(path, { numClasses });
  if (ext === '.safetensors') return checkpointTeacher(path);
  return new TorchScriptTeacher(path, numClasses);
}
