// A generalist and specialists on confusable subsets as one teacher (Hinton et al. 2015, section 5).
export * from './subsets.js';
export * from './specialist.js';
export * from './combine.js';
export * from './teacher.js';
