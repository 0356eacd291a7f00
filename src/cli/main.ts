// `kdistill <command>`: train, distill, eval, methods, models, demo. Every failure ends with a
// one-paragraph message naming what to change and a non-zero exit code, never a stack trace
// (set KDISTILL_DEBUG=1 for one).
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { native, packageRoot } from '../tensor/native.js';
import { compare, runExperimentFile } from '../api.js';
import { describeMethods } from '../methods/registry.js';
import { describeModels } from './models.js';
import { runDemo } from './demo.js';
import { evalCommand } from './eval.js';
import { exportCommand, reportCommand, serveCommand } from './deliver.js';
import { DISTRIBUTED_CLI_OPTIONS, distributedArgs, followLauncher, launch, stripLauncherFlags } from '../distributed/index.js';
import { specialistsCommand } from './specialists.js';
import { synthesizeCommand } from './synthesize.js';
import { adjustBiasCommand } from './bias.js';
import { areFolders, compareSweepsCommand, sweepCommand } from './sweep.js';
import { DEFAULT_PROFILE_WINDOW, describeProfile, type ProfileWindow } from '../train/profile.js';

const USAGE = `kdistill — knowledge distillation on libtorch

Usage:
  kdistill demo [--epochs N] [--seed S] [--subset N]
                                            distill the bundled Fashion-MNIST teacher into a small MLP, print a table
  kdistill demo --paper hinton [--epochs N] [--from runs/hinton-mnist]
                                            Hinton et al. 2015 §3 on MNIST beside the paper's numbers (short runs,
                                            or the table of finished runs of experiments/hinton-mnist)
  kdistill train <experiment.yaml>          train a model from scratch (e.g. a teacher)
  kdistill distill <experiment.yaml>        distill the experiment's teacher(s) into its student
  kdistill eval <run-dir|model.safetensors> evaluate a saved model (a run on its own test data; a file with [--data fashion-mnist])
                                            [--teacher t.safetensors|t.onnx|t.pt]: agreement with it, and its own accuracy
  kdistill adjust-bias <run-dir> --classes 3[,7,…] [--offset fit|N]
                                            add one offset to these classes' output biases (Hinton 2015 §3), fitted on
                                            the run's validation split; records it in result.json
  kdistill compare <a.yaml> <b.yaml> ... [--seeds 1,2,3] [--out DIR]
                                            run experiments over seeds, print mean ± std (finished runs are reused)
  kdistill compare <sweep-dir> <sweep-dir> ... [--baseline NAME]
                                            the benchmark table of finished sweeps (their chosen settings on the final
                                            seeds; Δ against the scratch row or NAME), nothing trained
  kdistill sweep <experiment.yaml> [--grid 'PATH=[v1,v2,…]']… [--range|--log-range|--int-range 'PATH=[a,b]' --trials N]
                                            hyper-parameter search (docs/sweep.md): trials scored on a validation split
                                            held out of the training data (--val 0.1; never the test set), best.yaml,
                                            then the best setting on --seeds 1,2,3 (or none) scored on the test set.
                                            [--metric accuracy|agreement|nll|ece] [--jobs N] [--threads N per job]
                                            [--early-stop median] [--random-seed S] [--out DIR]; finished trials are reused
  kdistill export <run-dir|model.safetensors> [--out DIR] [--format onnx,safetensors | hf] [--opset 13..17]
                                            the student as ONNX and/or safetensors, with config.json
                                            [--quantize int8]: also model.int8.onnx (QDQ: uint8 activations, int8
                                            weights) from a run trained with quantize:, checked in onnxruntime-node
                                            against kdistill, with size and batch-1 latency vs float
                                            [--quantize int8 --calibrate N]: post-training quantization of a float
                                            run, its activation ranges from N training samples
                                            (--format hf: onnx/model_quantized.onnx, transformers.js's dtype 'q8')
                                            [--web]: the INT8 check and float/INT8 latency also in onnxruntime-web
                                            (wasm, headless Chromium at KDISTILL_CHROMIUM or /usr/bin/chromium)
  kdistill report <run-dir...> [--out FILE] an HTML report (one run, or several side by side; or a sweep folder)
  kdistill serve <run-dir...> [--port P]    the report live in the browser while the run trains (127.0.0.1 only)
  kdistill specialists <file.yaml> [--output DIR]
                                            a generalist + specialists ensemble (Hinton 2015 §5): subsets,
                                            specialists, evaluation and a teacher bundle ({specialists: DIR})
  kdistill synthesize <file.yaml> [--output DIR]
                                            DeepInversion: a transfer set (x.npy, y.npy, samples.png) synthesised from a
                                            batch-norm teacher alone; distil on it with data.transferFile (experiments/datafree)
  kdistill methods                          every method with its hyper-parameters, defaults and paper
  kdistill models                           the model zoo and each architecture's options
  kdistill --version                        versions of kdistill and libtorch
  kdistill <command> --help                 help for one command

Options for train/distill:
  --resume            continue from the output folder's checkpoint (default: on if one exists; --no-resume to restart)
  --epochs N          override the experiment's epochs
  --seed S            override the seed
  --output DIR        override the output folder
  --threads N         libtorch threads (default: the experiment's, else 1)
  --profile           profile libtorch's operators over steps 10–29 of the run (forward, backward, optimizer);
                      prints the top operators by self CPU time and writes profile.json/profile.txt to the run folder
  --profile-steps A-B profile steps A to B instead (counted from 0 in this process; implies --profile)
  --nproc N           data-parallel: N worker processes on this machine, each training on its shard of every batch
  --world-size W --rank R --master HOST:PORT
                      join a group of W processes across machines (rank 0 listens on HOST:PORT); see docs/distributed.md
`;

/** One command's lines of USAGE (its entry and continuation lines), plus the train/distill options. */
export function commandHelp(cmd: string): string | null {
  const lines = USAGE.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith(`  kdistill ${cmd} `) && lines[i] !== `  kdistill ${cmd}`) continue;
    out.push(lines[i]!);
    while (i + 1 < lines.length && /^ {5,}\S/.test(lines[i + 1]!)) out.push(lines[++i]!);
  }
  if (out.length === 0) return null;
  const opts = cmd === 'train' || cmd === 'distill' ? USAGE.slice(USAGE.indexOf('Options for train/distill:')) : '';
  return `Usage:\n${out.join('\n')}\n${opts ? `\n${opts}` : ''}`;
}

/**
 * `--seed -5` as `--seed=-5`: node's parseArgs refuses an option value that starts with a dash
 * ("argument is ambiguous"), so a negative number would never reach the check that explains it.
 */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, next = argv[i + 1];
    if (/^--[^=]+$/.test(a) && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export async function run(argvIn: string[]): Promise<number> {
  const argv = joinNegativeValues(argvIn);
  const [cmd, ...rest] = argv;
  if (cmd !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    const help = commandHelp(cmd);
    if (help) {
      process.stdout.write(help);
      return 0;
    }
  }
  try {
    switch (cmd) {
      case 'train':
      case 'distill':
        return await trainCommand(cmd, rest);
      case 'eval':
        return evalCommand(rest);
      case 'adjust-bias':
        return adjustBiasCommand(rest);
      case 'compare':
        return await compareCommand(rest);
      case 'sweep':
        return await sweepCommand(rest);
      case 'export':
        return await exportCommand(rest);
      case 'report':
        return await reportCommand(rest);
      case 'serve':
        return await serveCommand(rest);
      case 'specialists':
        return await specialistsCommand(rest);
      case 'synthesize':
        return synthesizeCommand(rest);
      case 'methods':
        process.stdout.write(describeMethods() + '\n');
        return 0;
      case 'models':
        process.stdout.write(describeModels() + '\n');
        return 0;
      case 'demo':
        return await runDemo(rest);
      case '--version':
      case '-V':
      case 'version': {
        const { version } = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
        process.stdout.write(`kdistill ${version} (libtorch ${native.torchVersion}, node ${process.version})\n`);
        return 0;
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return cmd === undefined ? 1 : 0;
      default:
        process.stderr.write(`kdistill: unknown command '${cmd}'\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    const err = e as Error & { exitCode?: unknown };
    process.stderr.write(`kdistill ${cmd}: ${err.message}\n`);
    if (process.env.KDISTILL_DEBUG) process.stderr.write(`${err.stack}\n`);
    // An interrupted run (SIGINT/SIGTERM, checkpoint saved) exits 128 + signal, as shells expect.
    return typeof err.exitCode === 'number' ? err.exitCode : 1;
  }
}

async function trainCommand(cmd: 'train' | 'distill', argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      resume: { type: 'boolean' },
      'no-resume': { type: 'boolean' },
      epochs: { type: 'string' },
      seed: { type: 'string' },
      output: { type: 'string' },
      threads: { type: 'string' },
      profile: { type: 'boolean' },
      'profile-steps': { type: 'string' },
      ...DISTRIBUTED_CLI_OPTIONS,
    },
  });
  if (positionals.length !== 1) throw new Error(`expects one experiment file, e.g. kdistill ${cmd} experiments/fashion-mnist/kd.yaml`);
  const overrides: Record<string, unknown> = {};
  const least = { epochs: 1, seed: 0, threads: 1 };
  for (const k of ['epochs', 'seed', 'threads'] as const) {
    const v = values[k];
    if (v !== undefined) {
      const n = Number(v);
      if (!Number.isInteger(n) || n < least[k]) throw new Error(`--${k} must be an integer ≥ ${least[k]}, got '${v}'`);
      overrides[k] = n;
    }
  }
  // --output is relative to where the command runs, not to the experiment file
  if (values.output) overrides.output = resolve(values.output);
  const dist = distributedArgs(values);
  if (dist.kind === 'launch') {
    const { nproc, worldSize, firstRank, masterAddr, masterPort } = dist;
    return launch({ nproc, worldSize, firstRank, ...(masterAddr ? { masterAddr } : {}), ...(masterPort ? { masterPort } : {}), args: [cmd, ...stripLauncherFlags(argv)] });
  }
  if (dist.kind === 'worker') followLauncher();
  const profile = profileWindow(values.profile, values['profile-steps']);
  const result = await runExperimentFile(positionals[0]!, {
    mode: cmd, overrides, resume: !values['no-resume'], ...(dist.kind === 'worker' ? { distributed: dist.options } : {}), ...(profile ? { profile } : {}),
  });
  // Only rank 0 reports (the other ranks' summary is empty).
  if (result.summary) process.stdout.write(result.summary + '\n');
  if (result.profile) process.stdout.write(`\n${describeProfile(result.profile)}\n(all operators: ${join(result.experiment.output, 'profile.json')})\n`);
  else if (profile && result.summary) process.stdout.write(`\nno profile: the run took no step in ${profile.from}–${profile.from + profile.steps - 1} (--profile-steps picks others)\n`);
  return 0;
}

/** --profile / --profile-steps A-B as a window of steps, or null. */
function profileWindow(flag: boolean | undefined, steps: string | undefined): ProfileWindow | null {
  if (steps === undefined) return flag ? DEFAULT_PROFILE_WINDOW : null;
  const m = /^(\d+)-(\d+)$/.exec(steps);
  if (!m || Number(m[2]) < Number(m[1])) throw new Error(`--profile-steps must be A-B with 0 ≤ A ≤ B (steps counted from 0), got '${steps}'`);
  return { from: Number(m[1]), steps: Number(m[2]) - Number(m[1]) + 1 };
}

async function compareCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, options: { seeds: { type: 'string', default: '1,2,3' }, out: { type: 'string' }, baseline: { type: 'string' } },
  });
  if (areFolders(positionals)) {
    if (values.out !== undefined || argv.some((a) => a.startsWith('--seeds'))) throw new Error('--seeds and --out apply to experiment files: sweep folders are tabulated as their sweeps ran them');
    return compareSweepsCommand(positionals, values.baseline);
  }
  const folder = positionals.find((p) => areFolders([p]));
  if (folder) throw new Error(`'${folder}' is a folder: compare takes either experiment files or sweep folders, not both`);
  if (values.baseline !== undefined) throw new Error('--baseline applies to sweep folders (kdistill compare <sweep-dir>…)');
  if (positionals.length === 0) throw new Error('expects experiment files, e.g. kdistill compare scratch.yaml kd.yaml --seeds 1,2,3');
  const seeds = values.seeds!.split(',').map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds must be a comma-separated list of integers, got '${values.seeds}'`);
  const { table } = await compare(positionals, seeds, values.out);
  process.stdout.write(table + '\n');
  return 0;
}
