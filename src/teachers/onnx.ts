// A teacher given as an ONNX file, run by onnxruntime-node (an optional dependency: kdistill
// installs and works without it; only ONNX teachers need it). Install it with
//   ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node
// (or `npm install onnxruntime-node --onnxruntime-node-install=skip`, or
// `onnxruntime-node-install=skip` in .npmrc): without the skip its postinstall script tries to
// download CUDA provider libraries from NuGet on Linux x64. The CPU runtime is in the npm package.
//
// Teacher.logits is synchronous (the trainer calls it inside a step). onnxruntime-node's public
// InferenceSession.run is a Promise around a synchronous native run, so this module drives the
// package's native session object (dist/binding.js) directly, after checking that it is there.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { wrongTeacherFile } from './file-kind.js';
import { createHash } from 'node:crypto';
import type { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/factories.js';
import { getNumThreads } from '../tensor/torch.js';
import { fileSha256 } from '../data/errors.js';
import type { Teacher } from './teacher.js';
import { ProtoWriter, protoFields, protoString, readVarint, type ProtoField } from '../util/protobuf.js';
import { suggest } from '../util/suggest.js';

export const ONNX_INSTALL_HINT = 'ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node';

/** The parts of onnxruntime-node used here. */
interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}
interface OrtTensorCtor {
  new (type: string, data: Float32Array | Float64Array | BigInt64Array | Int32Array, dims: readonly number[]): OrtTensor;
}
interface ValueMetadata {
  name: string;
  isTensor: boolean;
  shape: number[];
  symbolicDimensions: string[];
  type: number;
}
interface NativeSession {
  loadModel(path: string, options: Record<string, unknown>): void;
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: Record<string, unknown>): void;
  readonly inputMetadata: ValueMetadata[];
  readonly outputMetadata: ValueMetadata[];
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, null>, options: Record<string, unknown>): Record<string, OrtTensor>;
  dispose(): void;
}
interface Runtime {
  Tensor: OrtTensorCtor;
  newSession(): NativeSession;
  version: string;
}

// onnxruntime's element type codes (ONNXTensorElementDataType) for the types handled here.
const ORT_FLOAT = 1;
const ORT_INT32 = 6;
const ORT_INT64 = 7;
const ORT_DOUBLE = 11;

/** The inputs of a text model that kdistill fills, as Optimum exports BERT-family classifiers. */
export const TEXT_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;

/**
 * A batch of token rows for a text model, each [batch, length] row-major: the teacher's own token
 * ids, 1 for real tokens and 0 for padding, and each token's segment (0 for a single text).
 */
export interface TokenFeed {
  batch: number;
  length: number;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  tokenTypeIds: BigInt64Array;
}

/**
 * The rows of x ([batch, length] token ids, any numeric dtype, right-padded with id 0) as the
 * model's own ids: the attention mask marks ids ≠ 0, every token is segment 0. Right when the
 * student's tokenizer is the teacher's; otherwise the teacher needs `tokens` (src/text/teacher-text.ts).
 */
export function idsFeed(x: Tensor): TokenFeed {
  if (x.shape.length !== 2) throw new Error(`a text model takes token ids [batch, length], got shape [${x.shape.join(', ')}]`);
  const [batch, length] = x.shape as [number, number];
  const ids = x.to('float64').contiguous();
  const d = ids.data<Float64Array>();
  ids.dispose();
  const inputIds = new BigInt64Array(d.length), attentionMask = new BigInt64Array(d.length);
  for (let i = 0; i < d.length; i++) {
    inputIds[i] = BigInt(d[i]!);
    attentionMask[i] = d[i] !== 0 ? 1n : 0n;
  }
  return { batch, length, inputIds, attentionMask, tokenTypeIds: new BigInt64Array(d.length) };
}

let runtime: Runtime | null = null;

/**
 * Loads onnxruntime-node on first use; a missing package is an error that says how to install
 * it. The package is CommonJS, so it is required lazily rather than imported: the load stays
 * synchronous, and so does building a teacher, as for the other teacher sources.
 */
export function loadOnnxRuntime(): Runtime {
  if (runtime) return runtime;
  const require = createRequire(import.meta.url);
  let ort: { Tensor: OrtTensorCtor };
  try {
    ort = require('onnxruntime-node') as typeof ort;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && /onnxruntime-node['"]/.test(err.message)) {
      throw new Error(`ONNX teachers need the optional package onnxruntime-node, which is not installed. Install it with:\n  ${ONNX_INSTALL_HINT}\n(the skip setting stops its install script from downloading CUDA libraries)`);
    }
    throw new Error(`onnxruntime-node is installed but cannot be loaded: ${err.message.split('\n')[0]}`);
  }
  let b: { binding?: { InferenceSession?: new () => NativeSession }; initOrt?: () => void };
  try {
    b = require('onnxruntime-node/dist/binding.js') as typeof b;
  } catch (e) {
    throw new Error(`onnxruntime-node: cannot load its native binding (${(e as Error).message.split('\n')[0]}); reinstall it with ${ONNX_INSTALL_HINT}`);
  }
  const Session = b.binding?.InferenceSession;
  if (typeof Session !== 'function' || typeof b.initOrt !== 'function' || typeof Session.prototype.run !== 'function') {
    throw new Error('onnxruntime-node: this version has no synchronous native session (dist/binding.js); kdistill is tested with onnxruntime-node 1.30');
  }
  b.initOrt();
  let version = '?';
  try {
    version = (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch { /* informational */ }
  runtime = { Tensor: ort.Tensor, newSession: () => new Session(), version };
  return runtime;
}

export interface OnnxTeacherOptions {
  /** Input name (default: the model's only input). */
  input?: string;
  /** Output name holding the logits (default: the first output). */
  output?: string;
  /** Class count when the output's last dimension is symbolic (default: from the model). */
  numClasses?: number;
  /** onnxruntime intra-op threads (default: libtorch's thread count, so the two do not oversubscribe). */
  threads?: number;
  /**
   * For a text model (inputs input_ids and optionally attention_mask, token_type_ids): its
   * token rows for a batch of the student's inputs. Default idsFeed: the inputs are its own ids.
   */
  tokens?: (x: Tensor) => TokenFeed;
  /** What else the outputs depend on (e.g. the hash of the teacher's tokenizer behind `tokens`); part of the checksum. */
  feedChecksum?: string;
  /** The class order of its outputs, when known (e.g. config.json's id2label beside it). */
  classNames?: readonly string[];
}

/** A frozen ONNX model as a teacher. Its logits feed every logit-based method and the cache. */
export class OnnxTeacher implements Teacher {
  readonly description: string;
  /** sha256 of the file; when a non-default output is chosen, of the file and that name. */
  readonly checksum: string;
  readonly numClasses: number;
  readonly numParameters: number;
  readonly classNames?: readonly string[];
  readonly inputName: string;
  /** A text model's inputs (a subset of TEXT_INPUTS, in the model's order); null for a model of one float input. */
  readonly textInputs: readonly string[] | null;
  readonly outputName: string;
  /** Sample shape the model declares (symbolic dimensions as -1), without the batch dimension. */
  readonly inputShape: number[];
  readonly #session: NativeSession;
  readonly #rt: Runtime;
  readonly #inputType: number;
  readonly #textTypes = new Map<string, number>();
  readonly #tokens: (x: Tensor) => TokenFeed;
  readonly #sessionOptions: Record<string, unknown>;
  /** Sessions whose model returns extra intermediate values, by their JSON-encoded names. */
  readonly #featureSessions = new Map<string, NativeSession>();

  /** Loads the model (onnxruntime-node is loaded on first use). */
  constructor(readonly path: string, o: OnnxTeacherOptions = {}) {
    if (!existsSync(path)) throw new Error(`ONNX teacher not found: ${path}`);
    const rt = loadOnnxRuntime();
    const session = rt.newSession();
    this.#sessionOptions = { intraOpNumThreads: o.threads ?? getNumThreads(), interOpNumThreads: 1, executionProviders: ['cpu'], graphOptimizationLevel: 'all' };
    try {
      session.loadModel(path, this.#sessionOptions);
    } catch (e) {
      throw new Error(wrongTeacherFile(path, 'onnx', `onnxruntime ${rt.version} cannot load it: ${(e as Error).message.split('\n')[0]}`));
    }
    this.#rt = rt;
    this.#session = session;
    const ins = session.inputMetadata, outs = session.outputMetadata;
    const pick = (list: ValueMetadata[], want: string | undefined, what: string): ValueMetadata => {
      if (want !== undefined) {
        const m = list.find((v) => v.name === want);
        if (!m) throw new Error(`${path}: the model has no ${what} named '${want}' (${what}s: ${list.map((v) => v.name).join(', ')})`);
        return m;
      }
      return list[0]!;
    };
    // A text model (Optimum's export of a BERT-family classifier): its inputs are taken by name.
    const text = o.input === undefined && ins.some((v) => v.name === 'input_ids');
    if (text) {
      const unknown = ins.filter((v) => !(TEXT_INPUTS as readonly string[]).includes(v.name));
      if (unknown.length) {
        throw new Error(`${path}: the model's inputs are ${ins.map((v) => `'${v.name}'`).join(', ')}; kdistill feeds a text model ${TEXT_INPUTS.join(', ')} ` +
          `(as Optimum exports BERT-family classifiers) and does not know what to give ${unknown.map((v) => `'${v.name}'`).join(', ')}`);
      }
      for (const v of ins) {
        if (!v.isTensor || (v.type !== ORT_INT64 && v.type !== ORT_INT32)) throw new Error(`${path}: input '${v.name}' of the text model is not an int64/int32 tensor`);
        if (v.shape.length !== 2) throw new Error(`${path}: input '${v.name}' has rank ${v.shape.length}; a text model's inputs are [batch, sequence]`);
        this.#textTypes.set(v.name, v.type);
      }
    } else if (o.input === undefined && ins.length !== 1) {
      throw new Error(`${path}: the model has ${ins.length} inputs (${ins.map((v) => v.name).join(', ')}); set teacher.input to the one that takes the images ` +
        `(a text model's are ${TEXT_INPUTS.join(', ')})`);
    }
    if (outs.length === 0) throw new Error(`${path}: the model has no outputs`);
    const inp = text ? ins.find((v) => v.name === 'input_ids')! : pick(ins, o.input, 'input');
    const out = pick(outs, o.output, 'output');
    if (!text && (!inp.isTensor || (inp.type !== ORT_FLOAT && inp.type !== ORT_DOUBLE))) throw new Error(`${path}: input '${inp.name}' is not a float32/float64 tensor`);
    if (!out.isTensor || (out.type !== ORT_FLOAT && out.type !== ORT_DOUBLE)) throw new Error(`${path}: output '${out.name}' is not a float32/float64 tensor of logits`);
    this.inputName = inp.name;
    this.textInputs = text ? ins.map((v) => v.name) : null;
    this.#tokens = o.tokens ?? idsFeed;
    this.outputName = out.name;
    this.#inputType = inp.type;
    this.inputShape = inp.shape.slice(1).map((d) => (d >= 0 ? d : -1));
    const last = out.shape.length === 2 ? out.shape[1]! : -1;
    if (out.shape.length !== 2) throw new Error(`${path}: output '${out.name}' has rank ${out.shape.length}; logits must be [batch, classes]`);
    const nc = last > 0 ? last : o.numClasses;
    if (nc === undefined) throw new Error(`${path}: the number of classes of output '${out.name}' is symbolic; give teacher.numClasses`);
    if (o.numClasses !== undefined && last > 0 && o.numClasses !== last) throw new Error(`${path}: output '${out.name}' has ${last} classes, teacher.numClasses says ${o.numClasses}`);
    this.numClasses = nc;
    const sha = fileSha256(path);
    // Another output of the same file gives other soft targets, so it must key the cache apart.
    const outSha = o.output === undefined || out.name === outs[0]!.name ? sha : createHash('sha256').update(`${sha}:${out.name}`).digest('hex');
    this.checksum = o.feedChecksum === undefined ? outSha : createHash('sha256').update(`${outSha}:${o.feedChecksum}`).digest('hex');
    if (o.classNames) this.classNames = o.classNames;
    this.numParameters = countInitializerElements(readFileSync(path));
    this.description = `ONNX ${text ? 'text model ' : ''}${path}`;
  }

  logits(x: Tensor): Tensor {
    return this.#run(this.#session, x, [this.outputName])[0]!;
  }

  /**
   * Logits plus intermediate values of the graph by ONNX value name (a node output, e.g.
   * '/layer1/act_1/Relu_output_0' as torch.onnx.export names them): a second session, made on
   * the first call for these names, runs the model with them added as graph outputs.
   */
  features(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> } {
    const [output, ...values] = this.#run(this.#featureSession(names), x, [this.outputName, ...names]);
    const features: Record<string, Tensor> = {};
    names.forEach((n, i) => { features[n] = values[i]!; });
    return { output: output!, features };
  }

  #featureSession(names: readonly string[]): NativeSession {
    const key = JSON.stringify(names);
    const have = this.#featureSessions.get(key);
    if (have) return have;
    const buf = readFileSync(this.path);
    const { values, outputs } = onnxValueNames(buf);
    const known = new Set(values);
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length) {
      const u = unknown[0]!;
      const near = values.filter((v) => v.includes(u));
      throw new Error(`${this.path}: the model has no value named ${unknown.map((n) => `'${n}'`).join(', ')}${near.length ? '' : suggest(u, values)}; ` +
        (near.length ? `values containing '${u}': ${near.slice(0, 12).join(', ')}${near.length > 12 ? ', …' : ''}` : `values (${values.length}): ${values.slice(0, 12).join(', ')}${values.length > 12 ? ', …' : ''}`) +
        ' (features of an ONNX teacher are named by ONNX value, not by module path)');
    }
    const extra = [...new Set(names)].filter((n) => !outputs.includes(n));
    const model = withGraphOutputs(buf, extra);
    const session = this.#rt.newSession();
    try {
      session.loadModel(model.buffer, model.byteOffset, model.byteLength, this.#sessionOptions);
    } catch (e) {
      throw new Error(`${this.path}: onnxruntime cannot load the model with the values ${extra.map((n) => `'${n}'`).join(', ')} as extra outputs: ${(e as Error).message.split('\n')[0]}`);
    }
    for (const m of session.outputMetadata) {
      if (names.includes(m.name) && (!m.isTensor || (m.type !== ORT_FLOAT && m.type !== ORT_DOUBLE))) {
        session.dispose();
        throw new Error(`${this.path}: value '${m.name}' is not a float32/float64 tensor, so it cannot be a feature`);
      }
    }
    this.#featureSessions.set(key, session);
    return session;
  }

  /** A text model's feeds for x: its token rows, each input in its declared integer type. */
  #textFeeds(x: Tensor): { feeds: Record<string, OrtTensor>; shape: number[] } {
    const f = this.#tokens(x);
    const n = f.batch * f.length;
    for (const [k, v] of [['input_ids', f.inputIds], ['attention_mask', f.attentionMask], ['token_type_ids', f.tokenTypeIds]] as const) {
      if (v.length !== n) throw new Error(`${this.path}: ${k} has ${v.length} values for [${f.batch}, ${f.length}]`);
    }
    const values = { input_ids: f.inputIds, attention_mask: f.attentionMask, token_type_ids: f.tokenTypeIds };
    const feeds: Record<string, OrtTensor> = {};
    for (const [name, type] of this.#textTypes) {
      const v = values[name as keyof typeof values];
      feeds[name] = type === ORT_INT64 ? new this.#rt.Tensor('int64', v, [f.batch, f.length]) : new this.#rt.Tensor('int32', Int32Array.from(v, Number), [f.batch, f.length]);
    }
    return { feeds, shape: [f.batch, f.length] };
  }

  /** Runs a session on x and returns the fetched values as float32 tensors, in the order of `fetches`. */
  #run(session: NativeSession, x: Tensor, fetches: readonly string[]): Tensor[] {
    // Inference only: nothing here is recorded by autograd, as for the other teachers.
    if (this.textInputs) {
      const { feeds, shape } = this.#textFeeds(x);
      return this.#fetch(session, feeds, shape, fetches);
    }
    const shape = x.shape;
    const src = x.dtype === 'float32' || x.dtype === 'float64' ? x : x.to('float32');
    const dense = src.contiguous();
    let data = dense.data<Float32Array | Float64Array>();
    dense.dispose();
    if (src !== x) src.dispose();
    if (this.#inputType === ORT_DOUBLE && data instanceof Float32Array) data = Float64Array.from(data);
    if (this.#inputType === ORT_FLOAT && data instanceof Float64Array) data = Float32Array.from(data);
    const feed = new this.#rt.Tensor(this.#inputType === ORT_DOUBLE ? 'float64' : 'float32', data, shape);
    return this.#fetch(session, { [this.inputName]: feed }, shape, fetches);
  }

  #fetch(session: NativeSession, feeds: Record<string, OrtTensor>, shape: readonly number[], fetches: readonly string[]): Tensor[] {
    let res: Record<string, OrtTensor>;
    try {
      res = session.run(feeds, Object.fromEntries(fetches.map((n) => [n, null])), {});
    } catch (e) {
      throw new Error(`${this.path}: onnxruntime failed on an input of shape [${shape.join(', ')}]: ${(e as Error).message.split('\n')[0]}`);
    }
    return fetches.map((n) => {
      const y = res[n]!;
      const out = y.data instanceof Float32Array ? y.data : Float32Array.from(y.data as Float64Array);
      return tensor(out, { shape: [...y.dims] });
    });
  }

  /** Frees the onnxruntime session. */
  dispose(): void {
    this.#session.dispose();
    for (const f of this.#featureSessions.values()) f.dispose();
    this.#featureSessions.clear();
  }
}

// ---- reading and extending the ONNX protobuf -------------------------------------------------
// ModelProto.graph = field 7. GraphProto: node = 1 (NodeProto), initializer = 5 (TensorProto),
// output = 12 (ValueInfoProto). NodeProto.output = 2 (string). TensorProto.dims = 1 (int64, packed
// or not). ValueInfoProto.name = 1. Only these are read; everything else is skipped by wire type.

function graphField(buf: Uint8Array): ProtoField | undefined {
  for (const f of protoFields(buf)) if (f.field === 7 && f.wire === 2) return f;
  return undefined;
}

function countInitializerElements(buf: Uint8Array): number {
  try {
    const g = graphField(buf);
    if (!g) return 0;
    let total = 0;
    for (const init of protoFields(buf, g.start, g.end)) {
      if (init.field !== 5 || init.wire !== 2) continue;
      let n = 1;
      for (const d of protoFields(buf, init.start, init.end)) {
        if (d.field !== 1) continue;
        if (d.wire === 0) n *= d.value;
        else if (d.wire === 2) for (let p = d.start; p < d.end;) { const [v, q] = readVarint(buf, p); n *= v; p = q; }
      }
      total += n;
    }
    return total;
  } catch {
    return 0; // the count is informational; onnxruntime has already accepted the file
  }
}

/** The values of the main graph a session can return: every node's outputs and the graph's outputs, in file order. */
export function onnxValueNames(buf: Uint8Array): { values: string[]; outputs: string[] } {
  const g = graphField(buf);
  if (!g) throw new Error('no graph in the ONNX model');
  const values: string[] = [], outputs: string[] = [];
  for (const f of protoFields(buf, g.start, g.end)) {
    if (f.wire !== 2 || (f.field !== 1 && f.field !== 12)) continue;
    for (const s of protoFields(buf, f.start, f.end)) {
      if (f.field === 1 && s.field === 2 && s.wire === 2) values.push(protoString(buf, s));
      if (f.field === 12 && s.field === 1 && s.wire === 2) outputs.push(protoString(buf, s));
    }
  }
  return { values: [...new Set([...values, ...outputs])].filter(Boolean), outputs };
}

/**
 * The model with `names` appended to its graph's outputs, as a ValueInfoProto carrying only the
 * name (onnxruntime infers the type, as it does for the other values): the ModelProto's bytes
 * are copied with the graph field rewritten, the graph's bytes with the new outputs after them.
 */
export function withGraphOutputs(buf: Uint8Array, names: readonly string[]): Uint8Array {
  const g = graphField(buf);
  if (!g) throw new Error('no graph in the ONNX model');
  const graph = new ProtoWriter().raw(buf.subarray(g.start, g.end));
  for (const n of names) graph.message(12, new ProtoWriter().string(1, n));
  return new ProtoWriter().raw(buf.subarray(0, g.tagStart)).message(7, graph).raw(buf.subarray(g.end)).finish();
}
