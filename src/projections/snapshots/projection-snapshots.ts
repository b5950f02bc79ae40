import { randomUUID } from 'node:crypto'
import type { Sql, Tx } from '../../db/connect.js'
import { Problem } from '../../problems.js'
import { generationLock } from '../generation-lock.js'
import { inProjectionLock } from '../projection-lock.js'
import { getProjection, notFound } from '../definitions.js'
import { recordSystemEvent } from '../system-events.js'
import type { ProjectionSnapshot } from '../schemas.js'

// SPEC "Backfills and rebuilds": projection snapshots, backups of a projection's documents at a position.

export const AUTOMATIC = 'automatic'

const snapshotColumns = (sql: Sql | Tx) => sql`
  id, position, documents, created_at as "createdAt", reason, generation, definition_version as "definitionVersion"`

export const snapshotNotFound = (name: string, id: string): Problem =>
  new Problem('snapshot-not-found', { name, snapshotId: id }, `projection ${name} has no snapshot ${id}`)

// The projection lock (shared) keeps its definition and live generation as they are, and the generation
// lock keeps the live worker's and a non-atomic backfill's batches out, so the documents and the
// checkpoint stand still while they are copied: the copy is exactly the documents at that checkpoint, and
// it stays inside the database. With `generation`, copies only while that generation is live (null otherwise).
// `within` runs in the copy's transaction, so whatever it records about the snapshot commits with it or not at all.
export const copyLiveGeneration = (
  sql: Sql,
  name: string,
  reason: string,
  generation?: number,
  within?: (tx: Tx, snapshotId: string) => Promise<void>,
): Promise<ProjectionSnapshot | null> =>
  inProjectionLock(sql, name, 'shared', async (tx) => {
    const [live] = await tx<{ generation: number }[]>`
      select p.live_generation as generation
        from projections p
       where p.name = ${name}`
    if (!live) throw notFound(name)
    if (generation !== undefined && live.generation !== generation) return null
    await tx`select pg_advisory_xact_lock(${generationLock.classId}, ${generationLock.key(name, live.generation)})`
    const id = randomUUID()
    // a held tenant's documents are as of its hold: the snapshot keeps the holds with them
    await tx`
      insert into projection_snapshots (id, projection, generation, definition, definition_version, position, reason, holds)
      select ${id}, g.projection, g.generation, g.definition, g.definition_version, g.position, ${reason},
             coalesce((select jsonb_agg(jsonb_build_object('tenant', h.tenant, 'position', h.position, 'failure', h.failure))
                         from projection_tenant_holds h
                        where h.projection = g.projection and h.generation = g.generation), '[]')
        from projection_generations g
       where g.projection = ${name}
         and g.generation = ${live.generation}`
    const [snapshot] = await tx<ProjectionSnapshot[]>`
      with copied as (
        insert into projection_snapshot_documents (snapshot, tenant, id, document, version, updated_at)
        select ${id}, tenant, id, document, version, updated_at
          from projection_documents
         where projection = ${name}
           and generation = ${live.generation}
        returning document is not null as present
      )
      update projection_snapshots
         set documents = (select count(*) from copied where present)
       where id = ${id}
      returning ${snapshotColumns(tx)}`
    await within?.(tx, id)
    return snapshot!
  })

// Exported for backfills, which take one before they touch live documents (SPEC "Backfills and rebuilds").
export const createProjectionSnapshot = async (
  sql: Sql,
  name: string,
  reason = 'manual',
  within?: (tx: Tx, snapshotId: string) => Promise<void>,
): Promise<ProjectionSnapshot> => {
  const snapshot = (await copyLiveGeneration(sql, name, reason, undefined, within))!
  await recordSystemEvent(sql, name, 'ProjectionSnapshotCreated', { snapshotId: snapshot.id, position: snapshot.position, reason })
  return snapshot
}

// Newest (most recently taken) first.
export const listProjectionSnapshots = async (sql: Sql, name: string): Promise<ProjectionSnapshot[]> => {
  const rows = await sql<ProjectionSnapshot[]>`
    select ${snapshotColumns(sql)}
      from projection_snapshots
     where projection = ${name}
     order by seq desc`
  if (rows.length === 0) await getProjection(sql, name)
  return rows
}

export const getProjectionSnapshot = async (sql: Sql, name: string, id: string): Promise<ProjectionSnapshot> => {
  const [row] = await sql<ProjectionSnapshot[]>`
    select ${snapshotColumns(sql)}
      from projection_snapshots
     where projection = ${name}
       and id = ${id}`
  if (row) return row
  await getProjection(sql, name)
  throw snapshotNotFound(name, id)
}

// Retention counts automatic snapshots only: the newest `keep` of them stay. Manual ones and those
// taken before a backfill are kept until the projection is deleted.
export const pruneAutomaticSnapshots = (sql: Sql, name: string, keep: number): Promise<number> =>
  inProjectionLock(sql, name, 'shared', async (tx) => {
    const deleted = await tx`
      delete from projection_snapshots
       where projection = ${name}
         and reason = ${AUTOMATIC}
         and seq < (select coalesce(min(seq), 0)
                      from (select seq
                              from projection_snapshots
                             where projection = ${name}
                               and reason = ${AUTOMATIC}
                             order by seq desc
                             limit ${keep}) newest)
      returning id`
    return deleted.length
  })

// The position the last automatic snapshot at or below `position` was taken at (0 when none).
export const lastAutomaticPosition = async (sql: Sql, name: string, position: number): Promise<number> => {
  const [row] = await sql<{ position: number | null }[]>`
    select max(position) as position
      from projection_snapshots
     where projection = ${name}
       and reason = ${AUTOMATIC}
       and position <= ${position}`
  return row?.position ?? 0
}
