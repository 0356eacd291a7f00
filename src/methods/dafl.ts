// DAFL (Chen et al., "Data-Free Learning of Student Networks", ICCV 2019): no training image is
// used. A generator G maps noise z ~ N(0, I) to images that the fixed teacher T finds
// class-like (one-hot loss), strongly activating (activation loss on T's features) and balanced
// over the classes (information-entropy loss); the student S is distilled from T on G's images.
// Following the authors' code (DAFL-train.py, MNIST settings), one step is
//   x = G(z), (t, f) = T(x) with features f,
//   gen = oh·CE(t, argmax t) − a·mean|f| + ie·Σ p̄ log10 p̄      (src/losses/datafree.ts)
//   kd  = T²·KL(softmax(t/T) ‖ softmax(S(x.detach())/T))       (T = 1 in their code)
// and ONE backward of gen + kd updates G (Adam, lr 0.2) and S (Adam, lr 2e-3) together: gen
// reaches only G (T is frozen, S is not in it), kd only S (x and t detached), so the authors'
// simultaneous step needs no stages.
//
// In kdistill: G is an extra module with its own learning rate (Method.extraLr, a second
// parameter group of the run's optimizer); Method.inputs makes x = G(z), so the trainer feeds
// the student and the teacher G's images and the data source only sets the steps per epoch and
// the batch size (MNIST's 60,000 rows at batch 512 give 118 steps, the authors' loop runs 120).
// The teacher runs twice per step: the trainer's no-grad pass gives the KD target, the method's
// pass with gradients (Teacher.featuresWithGrad) the generator's losses.
import { Tensor } from '../tensor/tensor.js';
import { call } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { randn } from '../tensor/factories.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d, Conv2d, LeakyReLU, Linear, Tanh } from '../nn/layers.js';
import { ZooModel } from '../nn/zoo/common.js';
import type { Teacher } from '../teachers/teacher.js';
import { klDivergence } from '../losses/tempered.js';
import { activationLoss, informationEntropyLoss, oneHotLoss } from '../losses/datafree.js';
import { defineMethod, requireTeacherLogits } from './method.js';
import { int, num, str } from './params.js';

/** Nearest-neighbour ×2 upsampling (F.interpolate(x, scale_factor=2), mode 'nearest'). */
function upsample2(x: Tensor): Tensor {
  const [, , h, w] = x.shape as [number, number, number, number];
  return call('upsample_nearest2d', x, [2 * h, 2 * w], null, null);
}

/**
 * DAFL's generator for MNIST (their Generator class): linear to 128 maps of H/4 × W/4, batch
 * norm, ×2 upsample, conv3×3(128) → BN(eps 0.8) → leaky ReLU(0.2), ×2 upsample, conv3×3(64) →
 * BN(eps 0.8) → leaky ReLU(0.2) → conv3×3(C) → tanh → BN without affine (so the images have
 * zero mean and unit variance per batch, like normalised inputs). The eps 0.8 is the authors'
 * (the second positional argument of nn.BatchNorm2d).
 */
export class DaflGenerator extends Module {
  readonly l1: Linear;
  readonly bn0: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bnOut: BatchNorm2d;
  readonly act = new LeakyReLU(0.2);
  readonly tanh = new Tanh();
  constructor(readonly latentDim: number, readonly imageShape: [number, number, number]) {
    super();
    const [c, h, w] = imageShape;
    if (h % 4 !== 0 || w % 4 !== 0) throw new RangeError(`dafl: the generator makes images of a multiple of 4 pixels per side (two ×2 upsamplings), the inputs are ${h}×${w}`);
    this.l1 = this.registerModule('l1', new Linear(latentDim, 128 * (h / 4) * (w / 4)));
    this.bn0 = this.registerModule('bn0', new BatchNorm2d(128));
    this.conv1 = this.registerModule('conv1', new Conv2d(128, 128, 3, { padding: 1 }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(128, { eps: 0.8 }));
    this.conv2 = this.registerModule('conv2', new Conv2d(128, 64, 3, { padding: 1 }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(64, { eps: 0.8 }));
    this.conv3 = this.registerModule('conv3', new Conv2d(64, c, 3, { padding: 1 }));
    this.bnOut = this.registerModule('bnOut', new BatchNorm2d(c, { affine: false }));
  }
  forward(z: Tensor): Tensor {
    const [, h, w] = this.imageShape;
    let x = this.bn0.call(this.l1.call(z).reshape([z.shape[0]!, 128, h / 4, w / 4]));
    x = this.act.call(this.bn1.call(this.conv1.call(upsample2(x))));
    x = this.act.call(this.bn2.call(this.conv2.call(upsample2(x))));
    return this.bnOut.call(this.tanh.call(this.conv3.call(x)));
  }
}

/** The teacher's feature layer: the one named, else its zoo model's penultimate representation. */
function featureLayer(teacher: Teacher, named: string): string {
  if (named) return named;
  const model = 'model' in teacher ? teacher.model : undefined;
  if (model instanceof ZooModel) return model.embeddingName;
  throw new Error(`method 'dafl': the teacher (${teacher.description}) is not a kdistill model, so its penultimate layer is unknown; name it with teacherFeature`);
}

export const dafl = defineMethod({
  name: 'dafl',
  summary: 'Data-free: a generator learns images the teacher calls confidently one class (oneHot), that activate its features (activation) and cover the classes evenly (entropy); ' +
    'the student is distilled (KD) on those images only. The data source only sets steps per epoch and batch size; its images are never used.',
  paper: 'Chen, Wang, Xu, Yang, Liu, Shi, Xu, Xu, Tian, "Data-Free Learning of Student Networks", ICCV 2019 (arXiv:1904.01186; authors\' code huawei-noah/Efficient-Computing, DAFL)',
  differs: 'as the authors\' MNIST code: activation = −mean|f| (paper: ℓ1 norm), entropy in log10, one simultaneous update of generator and student; ' +
    'the teacher is a kdistill model (or any teacher with featuresWithGrad), features at teacherFeature (default: its penultimate layer; DAFL\'s LeNet-5 uses act3)',
  needsTeacher: true,
  params: {
    latentDim: int({ default: 100, min: 1, description: 'Dimension of the generator\'s noise input (authors, MNIST: 100)' }),
    oneHotWeight: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the one-hot loss (authors, MNIST: oh = 1)' }),
    activationWeight: num({ default: 0.1, unit: 'weight', min: 0, description: 'Weight of the activation loss (authors, MNIST: a = 0.1)' }),
    entropyWeight: num({ default: 5, unit: 'weight', min: 0, description: 'Weight of the information-entropy loss (authors, MNIST: ie = 5)' }),
    generatorLr: num({ default: 0.2, unit: 'learning rate', min: 0, description: 'The generator\'s learning rate, with the run\'s optimizer kind (authors, MNIST: Adam 0.2; the student\'s is optimizer.lr, theirs 2e-3)' }),
    teacherFeature: str({ default: '', description: 'Module path of the teacher features of the activation loss (empty: the teacher model\'s penultimate layer, embeddingName)' }),
    temperature: num({ default: 1, unit: 'temperature', min: 0.01, max: 100, description: 'KD temperature; the KD term is scaled by T² (authors: none, i.e. 1)' }),
  },
  create(p) {
    let gen: DaflGenerator | null = null;
    let owner: Module | null = null;
    let feature = '';
    // G(z) of the current step, with its graph: made in inputs(), consumed by losses() of the same step.
    let images: Tensor | null = null;
    const generator = (): DaflGenerator => {
      if (!gen) throw new Error("method 'dafl': setup() was not called (the trainer calls it before training)");
      return gen;
    };
    return {
      extraLr: p.generatorLr,
      setup({ student, teacher, sample }) {
        if (owner === student) return; // once per student: G keeps its training
        if (!teacher) throw new Error("method 'dafl' needs a teacher");
        if (!teacher.featuresWithGrad) throw new Error(`method 'dafl': the teacher (${teacher.description}) cannot give features with gradients (a kdistill model checkpoint can)`);
        const shape = sample?.shape.slice(1) ?? (student instanceof ZooModel ? student.inputShape : []);
        if (shape.length !== 3) throw new Error(`method 'dafl' generates images [C, H, W]; the inputs have shape [${shape.join(', ')}]`);
        feature = featureLayer(teacher, p.teacherFeature);
        owner = student;
        gen?.dispose();
        gen = new DaflGenerator(p.latentDim, [shape[0]!, shape[1]!, shape[2]!]);
      },
      extraModules: () => (gen ? [gen] : []),
      inputs(batch) {
        images = generator().call(randn([batch.x.shape[0]!, p.latentDim]));
        // The student learns from the images as data: KD must not reach the generator.
        return images.detach();
      },
      losses(ctx) {
        const x = images;
        if (!x) throw new Error("method 'dafl': no generated batch (the trainer calls inputs() before losses())");
        images = null;
        const t = ctx.teacher;
        if (!t?.featuresWithGrad) throw new Error("method 'dafl' needs a teacher with featuresWithGrad");
        const target = requireTeacherLogits(ctx, 'dafl');
        return tidy(() => {
          const { output, features } = t.featuresWithGrad!(x, [feature]);
          return {
            oneHot: oneHotLoss(output).mul(p.oneHotWeight),
            activation: activationLoss(features[feature]!).mul(p.activationWeight),
            entropy: informationEntropyLoss(output).mul(p.entropyWeight),
            kd: klDivergence(target, ctx.studentLogits, p.temperature),
          };
        });
      },
      samples(n) {
        return gen ? noGrad(() => generator().call(randn([Math.max(2, n), p.latentDim])).slice(0, 0, n)) : null;
      },
    };
  },
});
