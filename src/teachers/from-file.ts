// A teacher given as a bare file (`kdistill eval --teacher FILE`), by its kind: an ONNX model
// (.onnx), a kdistill checkpoint (.safetensors), else TorchScript (.pt and the like; a file of
// another kind gets the TorchScript loader's explanation of what it is instead).
import { extname } from 'node:path';
import type { Teacher } from './teacher.js';
import { checkpointTeacher, TorchScriptTeacher } from './sources.js';
import { OnnxTeacher } from './onnx.js';

/** The experiment file's teacher key for a model file known by its extension; undefined for any other name. */
export function teacherKindOf(path: string): 'onnx' | 'checkpoint' | 'torchscript' | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === '.onnx') return 'onnx';
  if (ext === '.safetensors') return 'checkpoint';
  return ext === '.pt' || ext === '.pth' ? 'torchscript' : undefined;
}

export function loadTeacherFile(path: string, numClasses: number): Teacher {
  const kind = teacherKindOf(path);
  if (kind === 'onnx') return new OnnxTeacher(path, { numClasses });
  if (kind === 'checkpoint') return checkpointTeacher(path);
  return new TorchScriptTeacher(path, numClasses);
}
