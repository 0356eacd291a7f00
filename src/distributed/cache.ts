// The teacher-output cache built in parallel: every rank computes the teacher's logits on its
// part of the samples the cache lacks, the parts are all-gathered, rank 0 writes the file, and
// after a barrier every rank serves the same values.
import { tensor } from '../tensor/factories.js';
import { tidy } from '../tensor/scope.js';
import type { TeacherCacheOptions } from '../teachers/cache.js';
import type { ProcessGroup } from './group.js';
import { splitRange } from './shard.js';

/** Options for TeacherOutputCache.open / cachedTeacher that split the build across `pg`. */
export function parallelCacheOptions(pg: ProcessGroup): Required<Pick<TeacherCacheOptions, 'distribute' | 'write'>> {
  return {
    write: pg.rank === 0,
    distribute: (rows, C, compute) => {
      // Every rank must ask for the same rows: they read the same cache file. A cache folder that
      // is not shared between machines would make them differ; say so instead of mixing them up.
      const mine = [rows.length, hashRows(rows)];
      const all = tidy(() => pg.allgather(tensor(Float64Array.from(mine), { dtype: 'float64' })).map((t) => Array.from(t.data<Float64Array>())));
      const bad = all.findIndex((v) => v[0] !== mine[0] || v[1] !== mine[1]);
      if (bad >= 0) {
        throw new Error(`teacher cache: rank ${bad} needs ${all[bad]![0]} samples computed, rank ${pg.rank} ${mine[0]}: the ranks see different cache files. Put teacherCache.dir on a folder every machine shares, or set teacherCache: off`);
      }
      const out = new Float32Array(rows.length * C);
      if (rows.length === 0) return out;
      const { start, count } = splitRange(rows.length, pg.rank, pg.size);
      const part = compute(rows.subarray(start, start + count));
      // allgather needs one shape on every rank: pad to the largest part.
      const maxRows = Math.ceil(rows.length / pg.size);
      const padded = new Float32Array(maxRows * C);
      padded.set(part);
      tidy(() => {
        const parts = pg.allgather(tensor(padded));
        parts.forEach((t, r) => {
          const s = splitRange(rows.length, r, pg.size);
          out.set(t.data<Float32Array>().subarray(0, s.count * C), s.start * C);
        });
      });
      return out;
    },
  };
}

function hashRows(rows: Int32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < rows.length; i++) h = Math.imul(h ^ rows[i]!, 0x01000193);
  return h >>> 0;
}
