import type { Sql, Tx } from '../../db/connect.js'
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
// Whether this run is the first full rebuild of the projection since a subject was forgotten (recorded by
// src/subjects/forget-subject.ts): one queued after the forget, with no completed full rebuild after the forget yet.
const completesForget = async (tx: Tx, name: string, backfill: string): Promise<boolean> => {
  const [row] = await tx<{ completes: boolean }[]>`
    select exists (
      select
        from subject_rebuilds r
        join projection_backfills b on b.id = ${backfill}
       where r.projection = ${name}
         and b.request ->> 'criteria' = 'full-rebuild'
         and b.created_at >= r.created_at
         and not exists (
           select from projection_backfills done
            where done.projection = ${name}
              and done.status = 'completed'
              and done.request ->> 'criteria' = 'full-rebuild'
              and done.created_at >= r.created_at)
    ) as completes`
  return row?.completes ?? false
}

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
    if (await completesForget(tx, name, row.backfill)) {
      // SPEC "Personal data": the generation replaced holds what came from forgotten personal data, and so does
      // every projection snapshot taken before; neither stays for a rollback or a restore
      await dropGenerations(tx, name, 'retired')
      await tx`delete from projection_snapshots where projection = ${name}`
    }
    const [backfill] = await tx<NonNullable<SwappedIn['backfill']>[]>`
      update projection_backfills b
         set status = 'completed', finished_at = now(), updated_at = now()
       where b.id = ${row.backfill} and b.status = 'swapping'
      returning b.id, b.correlation_id as "correlationId", b.total,
                (select coalesce(sum(p.processed), 0)::bigint from projection_backfill_partitions p where p.backfill = b.id) as processed`
    return { previous: row.liveGeneration, backfill }
  })
