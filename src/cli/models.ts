// The text of `kdistill models`: each architecture, its options and feature names.
import { listModels } from '../nn/zoo/index.js';

// Options an experiment fills in from its data (src/run/experiment.ts studentSpec): required by
// createModel, but not to be written in a student spec.
const FROM_DATA = new Set(['inputShape', 'numClasses', 'vocabSize', 'maxLen', 'multiLabel']);

export function describeModels(): string {
  return listModels().map((m) => {
    const opts = Object.entries(m.options).map(([k, o]) => {
      const how = FROM_DATA.has(k) ? ' (an experiment takes it from its data; createModel in code needs it)'
        : o.required ? ' (required)' : o.default !== undefined ? ` = ${JSON.stringify(o.default)}` : '';
      return `    ${k.padEnd(12)} ${o.type}${how} — ${o.description}`;
    });
    return `${m.arch} (${m.family}): ${m.description}\n${opts.join('\n')}\n    features: ${m.features.join(', ')}; embedding: ${m.embedding}; head: ${m.head}`;
  }).join('\n\n');
}
