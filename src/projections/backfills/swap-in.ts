import type { Sql } from '../../db/connect.js'
import { dropGenerations, swapLive } from '../generations.js'
import { changeProjection } from '../projection-lock.js'

export interface SwappedIn {
  previous: number
  // the atomic backfill that built the generation, completed in the same transaction
  backfill: { id: string; correlationId: string | null; processed: number; total: number | null } | undefined
}

// A building generation that reached the live head replaces the live one in one short transaction, and the
// backfill that built it completes in the same transaction (SPEC "Backfills and rebuilds": atomic). The live
// one is kept, retired, for a rollback; the one retired before goes. Undefined when it is not (or no longer)
// building, or `caughtUp` says it fell behind while the lock was awaited.
export const swapInBuilt = (sql: Sql, name: string, generation: number, caughtUp: () => boolean): Promise<SwappedIn | undefined> =>
  changeProjection(sql, name, async (tx) => {
    const [row] = await tx<{ state: string; liveGeneration: number; backfill: string | null }[]>`
      select g.state, p.live_generation as "liveGeneration", g.backfill
        from projections p
        join projection_generations g on g.projection = p.name and g.generation = ${generation}
       where p.name = ${name}`
    if (row?.state !== 'building' || !caughtUp()) return undefined
    await dropGenerations(tx, name, 'retired')
    await swapLive(tx, name, generation, row.liveGeneration)
    if (row.backfill === null) return { previous: row.liveGeneration, backfill: undefined }
    const [backfill] = await tx<NonNullable<SwappedIn['backfill']>[]>`
      update projection_backfills b
         set status = 'completed', finished_at = now(), updated_at = now()
       where b.id = ${row.backfill} and b.status = 'swapping'
      returning b.id, b.correlation_id as "correlationId", b.total,
                (select coalesce(sum(p.processed), 0)::bigint from projection_backfill_partitions p where p.backfill = b.id) as processed`
    return { previous: row.liveGeneration, backfill }
  })
