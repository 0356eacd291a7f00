// kdistill.nn: Module, layers, initialisers, the model zoo and safetensors checkpoints.
export { Module } from './module.js';
export * from './layers.js';
export * as init from './init.js';
export * as quantize from './quantize.js';
export * from './zoo/index.js';
export {
  parseSafetensors, serializeSafetensors, saveSafetensors, loadSafetensors, saveModel, loadModel,
  MODEL_SPEC_KEY, QUANTIZE_KEY, type SafetensorsFile,
} from './safetensors.js';
