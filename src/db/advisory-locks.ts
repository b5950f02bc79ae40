// Every advisory lock the server takes, in one place: the first key of a two-key lock says what it guards,
// so no two uses can collide. Lock order between them: docs/architecture.md "Lock order".
export const LOCK_CLASS = {
  // one migrating instance at a time (a one-key lock: the class alone)
  migrations: 7_316_001,
  // the instance that runs a projection's workers and backfills (a session lock keyed by hashtext(name), src/projections/runner.ts)
  projectionOwner: 7_316_002,
  // one projection generation's documents (src/projections/generation-lock.ts)
  generation: 7_316_003,
  // one projection's definition, status, generations and backfills (src/projections/projection-lock.ts)
  projection: 7_316_004,
  // one tenant's subject, keyed by hashtext(tenant || '/' || subject): shared by appends of its personal data (in the
  // trigger events_take_personal_data(), sql/0019), exclusive for its forget (src/subjects/forget-subject.ts)
  subject: 7_316_005,
} as const

// The second key: FNV-1a of a name. Any stable 32-bit value will do, it only has to be the same in every instance.
export const lockKey = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash | 0
}
