// Moved to src/util/progress.ts (used below src/train too); this re-export goes once nothing imports it here.
export * from '../util/progress.js';
