// The README's library example: train a teacher, then distill it into a small student.
// Run: npx tsc -p . && node dist/examples/distill.js [epochs]
import { distill, fit } from '../src/index.js';

const epochs = Number(process.argv[2] ?? 3);
const teacher = await fit({ student: { arch: 'cnn', channels: [32, 64], hidden: 256 }, data: 'fashion-mnist', epochs });
console.log(`teacher: ${(100 * (teacher.final?.accuracy ?? 0)).toFixed(2)}% test accuracy`);
const { student, final } = await distill({
  teacher: teacher.student,
  student: { arch: 'mlp', hidden: [32] },
  data: 'fashion-mnist',
  method: { name: 'kd', params: { temperature: 2, alpha: 0.7 } },
  epochs,
});
console.log(`student (${student.numParameters()} parameters): ${(100 * (final?.accuracy ?? 0)).toFixed(2)}% test accuracy, ` +
  `${(100 * (final?.agreement ?? 0)).toFixed(2)}% agreement with the teacher`);
