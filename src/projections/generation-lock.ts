import { LOCK_CLASS, lockKey } from '../db/advisory-locks.js'

// A transaction-level advisory lock per projection generation: the live worker's batches take it
// exclusively and a backfill's partition batches take it shared, so a backfill writing the live
// documents never interleaves with the worker on the same document, while its partitions (disjoint
// streams) run side by side.
export const generationLock = {
  classId: LOCK_CLASS.generation,
  key: (projection: string, generation: number): number => lockKey(`${projection}:${generation}`),
}
