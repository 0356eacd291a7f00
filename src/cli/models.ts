// The text of `kdistill models`: each architecture, its options and feature names.
import { listModels } from '../nn/zoo/index.js';

export function describeModels(): string {
  return listModels().map((m) => {
    const opts = Object.entries(m.options).map(([k, o]) =>
      `    ${k.padEnd(12)} ${o.type}${o.required ? ' (required)' : o.default !== undefined ? ` = ${JSON.stringify(o.default)}` : ''} — ${o.description}`);
    return `${m.arch} (${m.family}): ${m.description}\n${opts.join('\n')}\n    features: ${m.features.join(', ')}; embedding: ${m.embedding}; head: ${m.head}`;
  }).join('\n\n');
}
