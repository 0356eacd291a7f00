// Pure loss functions of the distillation methods, each documented with its formula and paper.
export { temperedLogSoftmax, temperedSoftmax, klFromLogProbs, klDivergence } from './tempered.js';
export { softCrossEntropy, logitMse, jensenShannon, symmetricKl, agreement, MEASURES, type Measure } from './agreement.js';
export { standardizeLogits, maybeStandardize, STANDARDIZE_EPS } from './standardize.js';
export { dkdTerms, dkdLoss, type DkdTerms } from './dkd.js';
export { hintLoss, attentionMap, attentionLoss, HINT_LOSSES, type HintLoss } from './features.js';
export { derivatives, sobolevLosses, sobolevOutput, randomProjections, randomUnitDirections, SOBOLEV_OUTPUTS, type SobolevOutput, type Derivatives, type Projections } from './sobolev.js';
