// Every distillation method, by name. Adding a method is one file plus one line here.
import type { MethodSpec } from './method.js';
import { allowedValues, yamlFlow } from './params.js';
import { scratch } from './scratch.js';
import { kd } from './kd.js';
import { dkd } from './dkd.js';
import { noisyTeacher } from './noisy-teacher.js';
import { dml } from './dml.js';
import { codistill, onlineKdOneway } from './online-kd.js';
import { bss } from './bss.js';
import { adversarialKd } from './adversarial-kd.js';
import { fitnet } from './fitnet.js';
import { attention } from './attention.js';
import { sobolev } from './sobolev.js';
import { distilbert } from './distilbert.js';
import { tinybert } from './tinybert.js';
import { multilabelKd } from './multilabel-kd.js';
import { dist } from './dist.js';
import { pkt } from './pkt.js';
import { sp } from './sp.js';
import { rkd } from './rkd.js';
import { cc } from './cc.js';
import { nst } from './nst.js';
import { vid } from './vid.js';
import { crd } from './crd.js';
import { reviewkd } from './reviewkd.js';
import { ctkd } from './ctkd.js';
import { mlkd } from './mlkd.js';
import { tfKdReg, tfKdSelf } from './tf-kd.js';
import { csKd } from './cs-kd.js';
import { dafl } from './dafl.js';

export const METHODS: readonly MethodSpec[] = [scratch, kd, dkd, noisyTeacher, dml, codistill, onlineKdOneway, bss, adversarialKd, fitnet, attention, sobolev, distilbert, tinybert, multilabelKd, dist,
  pkt, sp, rkd, cc, nst, vid, crd, reviewkd, ctkd, mlkd, tfKdReg, tfKdSelf, csKd, dafl];

/** Old names still accepted: old name → current name. */
export const METHOD_ALIASES: Readonly<Record<string, string>> = {
  // Until issue 18 the one-way variant was called online-kd and cited codistillation, which it is not.
  'online-kd': 'online-kd-oneway',
};

export function getMethod(name: string): MethodSpec {
  const m = METHODS.find((s) => s.name === (METHOD_ALIASES[name] ?? name));
  if (!m) throw new Error(`unknown method '${name}' (known: ${METHODS.map((s) => s.name).join(', ')})`);
  return m;
}

/** The text of `kdistill methods`: each method, its paper and its hyper-parameters. */
export function describeMethods(): string {
  const blocks = METHODS.map((m) => {
    const rows = Object.entries(m.params).map(([k, p]) => [k, yamlFlow(p.default), p.unit ?? '', allowedValues(p), p.description + (p.was ? ` (formerly ${p.was})` : '')]);
    const w = [0, 1, 2, 3].map((i) => Math.max(0, ...rows.map((r) => r[i]!.length)));
    const lines = [
      `${m.name}${m.needsTeacher ? '' : ` (${m.teacherUse ?? 'no teacher'})`}`,
      `  ${m.summary}`,
      `  paper: ${m.paper}`,
      ...(m.differs ? [`  differs from the paper: ${m.differs}`] : []),
      ...(rows.length ? ['  hyper-parameters (name, default, unit, allowed, meaning):'] : ['  no hyper-parameters']),
      ...rows.map((r) => `    ${r.slice(0, 4).map((c, i) => c.padEnd(w[i]!)).join('  ')}  ${r[4]}`),
    ];
    return lines.join('\n');
  });
  const aliases = Object.entries(METHOD_ALIASES).map(([old, now]) => `${old} (deprecated name of ${now}; still accepted)`);
  return [...blocks, ...aliases, ...NOT_METHODS].join('\n\n');
}

// Set up outside `method:`, but what a user looks for in this list.
const NOT_METHODS = [
  'chains (a file with a top-level `stages:` list; not a method)\n' +
  '  teacher → teacher assistant(s) → student: each stage is an experiment (any method above) whose teacher is the previous stage\'s model; `kdistill distill chain.yaml` runs them in order and skips finished stages (experiments/whom)\n' +
  '  paper: Mirzadeh et al., "Improved Knowledge Distillation via Teacher Assistant", AAAI 2020',
  'specialists (`kdistill specialists file.yaml`; not a method)\n' +
  '  a generalist plus specialists with dustbin classes on confusable class subsets, combined by KL minimisation into a teacher bundle used as `teacher: {specialists: DIR}` with any method above (experiments/specialists)\n' +
  '  paper: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015, section 5',
];
