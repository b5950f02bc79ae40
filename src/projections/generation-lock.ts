// A transaction-level advisory lock per projection generation: the live worker's batches take it
// exclusively and a backfill's partition batches take it shared, so a backfill writing the live
// documents never interleaves with the worker on the same document, while its partitions (disjoint
// streams) run side by side.
export const generationLock = {
  classId: 7_316_003,
  key: (projection: string, generation: number): number => hash32(`${projection}:${generation}`),
}

// FNV-1a: any stable 32-bit value will do, it only has to be the same in every instance
export const hash32 = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash | 0
}
