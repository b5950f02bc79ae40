import type { Sql, Tx } from '../../db/connect.js'
import { Problem } from '../../problems.js'
import { generationLock } from '../generation-lock.js'
import { setCheckpoint } from '../generations.js'
import { changeProjection } from '../projection-lock.js'
import type { ProjectionRunner } from '../runner.js'
import { getProjectionSnapshot, snapshotNotFound } from './projection-snapshots.js'
import type { ProjectionSnapshot } from '../schemas.js'
import { notFound } from '../definitions.js'

interface Restorable {
  liveGeneration: number
  building: boolean
  sameDefinition: boolean
  snapshotDefinitionVersion: number
  liveDefinitionVersion: number
  snapshotPosition: number
}

// Everything that must hold for a restore, read under the projection lock (exclusive), which a swap, a
// redefinition and a new backfill all take too.
const lockRestorable = async (tx: Tx, name: string, id: string): Promise<Restorable> => {
  const [projection] = await tx<{ liveGeneration: number }[]>`
    select live_generation as "liveGeneration" from projections where name = ${name}`
  if (!projection) throw notFound(name)
  const [backfill] = await tx<{ id: string; status: string }[]>`
    select id, status
      from projection_backfills
     where projection = ${name}
       and status in ('queued', 'running', 'swapping')
     limit 1`
  if (backfill) {
    throw new Problem('backfill-in-progress', { projection: name, backfillId: backfill.id }, `projection ${name} has backfill ${backfill.id} ${backfill.status}; restore after it ends`)
  }
  const [row] = await tx<Omit<Restorable, 'liveGeneration'>[]>`
    select exists (select from projection_generations where projection = ${name} and state = 'building') as building,
           s.definition is not distinct from g.definition as "sameDefinition",
           s.definition_version as "snapshotDefinitionVersion",
           g.definition_version as "liveDefinitionVersion",
           s.position as "snapshotPosition"
      from projection_snapshots s
      join projection_generations g on g.projection = s.projection and g.generation = ${projection.liveGeneration}
     where s.projection = ${name}
       and s.id = ${id}`
  if (!row) throw snapshotNotFound(name, id)
  return { liveGeneration: projection.liveGeneration, ...row }
}

// Replaces the live generation's documents, checkpoint and tenant holds with the snapshot's in one transaction, so a
// reader sees either the projection before or the snapshot, never a mix or nothing. Only documents that
// differ are written. A worker elsewhere whose batch follows fails its checkpoint compare-and-set (the
// whole batch rolls back) and yields.
const replaceLiveGeneration = (sql: Sql, name: string, id: string): Promise<void> =>
  changeProjection(sql, name, async (tx) => {
    const restorable = await lockRestorable(tx, name, id)
    if (restorable.building) {
      throw new Problem('conflict', { name, snapshotId: id }, `projection ${name} is rebuilding; restore after the new generation is live`)
    }
    // the documents were made by the snapshot's definition; the worker would go on with another one
    if (!restorable.sameDefinition) {
      throw new Problem('conflict', {
        name,
        snapshotId: id,
        snapshotDefinitionVersion: restorable.snapshotDefinitionVersion,
        definitionVersion: restorable.liveDefinitionVersion,
      }, `snapshot ${id} was taken under definition version ${restorable.snapshotDefinitionVersion}; the live generation has version ${restorable.liveDefinitionVersion}`)
    }
    const generation = restorable.liveGeneration
    // A worker's batch on the live generation (here or elsewhere) commits before this or runs after it,
    // on the restored documents; its checkpoint compare-and-set then fails unless it started from the
    // snapshot's position, where going on is right.
    await tx`select pg_advisory_xact_lock(${generationLock.classId}, ${generationLock.key(name, generation)})`
    await tx`
      delete from projection_documents d
       where d.projection = ${name}
         and d.generation = ${generation}
         and not exists (select from projection_snapshot_documents s where s.snapshot = ${id} and s.tenant = d.tenant and s.id = d.id)`
    await tx`
      insert into projection_documents (projection, generation, tenant, id, document, version, updated_at)
      select ${name}, ${generation}, tenant, id, document, version, updated_at
        from projection_snapshot_documents
       where snapshot = ${id}
      on conflict (projection, generation, tenant, id) do update
        set document = excluded.document,
            version = excluded.version,
            updated_at = excluded.updated_at
        where projection_documents.version is distinct from excluded.version
           or projection_documents.document is distinct from excluded.document`
    await tx`delete from projection_tenant_holds where projection = ${name} and generation = ${generation}`
    await tx`
      insert into projection_tenant_holds (projection, generation, tenant, position, failure)
      select ${name}, ${generation}, h.tenant, h.position, h.failure
        from projection_snapshots s
        cross join jsonb_to_recordset(s.holds) as h(tenant text, position bigint, failure jsonb)
       where s.id = ${id}`
    await setCheckpoint(tx, name, generation, restorable.snapshotPosition)
  })

// This instance's workers stop first (their batch commits) and start again from the restored
// checkpoint afterwards, so the projection catches up from the snapshot's position. The second stop
// catches a worker a reconcile round may have started from the old checkpoint meanwhile.
export const restoreProjectionSnapshot = async (sql: Sql, runner: ProjectionRunner, name: string, id: string): Promise<ProjectionSnapshot> => {
  const snapshot = await getProjectionSnapshot(sql, name, id)
  await runner.stopLocal(name)
  try {
    await replaceLiveGeneration(sql, name, id)
  } finally {
    await runner.stopLocal(name)
    await runner.changed()
  }
  await runner.record(name, 'ProjectionSnapshotRestored', { snapshotId: id, position: snapshot.position })
  return snapshot
}
