import type { Sql, Tx } from '../db/connect.js'
import { isRetryableConflict } from '../db/pg-errors.js'
import { LOCK_CLASS, lockKey } from '../db/advisory-locks.js'

// The one lock order for every transaction that touches a projection (docs/architecture.md "Lock order"):
//   1. this advisory lock on the projection's name, as the transaction's first statement: exclusive for a
//      change of the projection itself (definition, status, generations, backfills, snapshots restored,
//      documents dropped), shared for work that only adds to it (a worker's or a partition's batch of
//      documents and checkpoint, a snapshot copy);
//   2. the generation lock (generation-lock.ts), where a batch needs it;
//   3. rows, in any order: projections, projection_generations, projection_backfills and partitions,
//      projection_documents, projection_snapshots.
// Nobody waits for 1 while holding 2 or 3, so two such transactions never wait on each other in a cycle:
// deadlocks are impossible by construction. The name need not exist yet, so two creations queue too.
export type LockMode = 'exclusive' | 'shared'

export const lockProjection = async (tx: Tx, name: string, mode: LockMode): Promise<void> => {
  const key = lockKey(name)
  if (mode === 'shared') await tx`select pg_advisory_xact_lock_shared(${LOCK_CLASS.projection}, ${key})`
  else await tx`select pg_advisory_xact_lock(${LOCK_CLASS.projection}, ${key})`
}

const ATTEMPTS = 5

// One transaction on one projection, under its lock, tried again on a serialization failure or (as a
// backstop only) a deadlock. A call that still fails gets 409 conflict from pg-errors.ts, never a 500.
export const inProjectionLock = async <T>(sql: Sql, name: string, mode: LockMode, work: (tx: Tx) => Promise<T>): Promise<T> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await sql.begin(async (tx) => {
        await lockProjection(tx, name, mode)
        return work(tx)
      })) as T
    } catch (error) {
      if (attempt >= ATTEMPTS || !isRetryableConflict(error)) throw error
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt))
    }
  }
}

export const changeProjection = <T>(sql: Sql, name: string, work: (tx: Tx) => Promise<T>): Promise<T> =>
  inProjectionLock(sql, name, 'exclusive', work)
