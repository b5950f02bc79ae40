import { Problem } from '../problems.js'
import type { Sql, Tx } from '../db/connect.js'
import { ACTIVE, finishBackfill } from './backfills/backfill-runs.js'
import { recordCancelled } from './backfills/backfill-commands.js'
import { dropGenerations, setCheckpoint } from './generations.js'
import { changeProjection } from './projection-lock.js'
import type { ProjectionRunner } from './runner.js'
import { deleteProjection, getProjection, notFound, putDeclarative, setStatus, type ProjectionRow } from './definitions.js'
import { viewOf, type TenantScope } from './projection-view.js'
import type { ProjectionView } from './schemas.js'
import { resumeHolds } from './tenant-holds.js'
import type { DeclarativeDefinition } from './definition-schema.js'

// SPEC "Management": each call answers after it took effect on this instance. This instance's workers
// stop before a call changes a checkpoint, outside its transaction: a worker's batch waits for the
// projection lock that transaction holds (projection-lock.ts), so stopping it inside would never end.

export const stopProjection = async (sql: Sql, runner: ProjectionRunner, name: string): Promise<void> => {
  const before = await setStatus(sql, name, 'stopped')
  await runner.stopLocal(name)
  await runner.changed()
  if (before === 'running') await runner.record(name, 'ProjectionStopped')
}

export const startProjection = async (sql: Sql, runner: ProjectionRunner, name: string): Promise<void> => {
  await setStatus(sql, name, 'running')
  await runner.changed()
  await runner.record(name, 'ProjectionStarted')
}

// Starts the projection and resumes its held tenants (all of them, or `tenant`'s): each tries the event it
// failed on again (docs/projection-failures.md).
export const restartProjection = async (sql: Sql, runner: ProjectionRunner, name: string, tenant?: string): Promise<void> => {
  await runner.stopLocal(name)
  const resumed = await changeProjection(sql, name, async (tx) => {
    await lockedProjection(tx, name)
    await tx`update projections set status = 'running', last_error = null, updated_at = now() where name = ${name}`
    return resumeHolds(tx, name, tenant, false)
  })
  await runner.changed()
  const tenants = resumed.map((hold) => hold.tenant)
  await runner.record(name, 'ProjectionStarted', tenants.length > 0 ? { resumed: tenants } : {})
}

const lockedProjection = async (tx: Tx, name: string) => {
  const [row] = await tx<Pick<ProjectionRow, 'status' | 'liveGeneration'>[]>`
    select status, live_generation as "liveGeneration" from projections where name = ${name}`
  if (!row) throw notFound(name)
  return row
}

// Skips the event each held tenant (all, or `tenant`) failed on, records that it did, and resumes the
// tenant after it (SPEC "Projections"; docs/projection-failures.md).
export const skipFailedEvent = async (sql: Sql, runner: ProjectionRunner, name: string, tenant?: string): Promise<void> => {
  await runner.stopLocal(name)
  const skipped = await changeProjection(sql, name, async (tx) => {
    const projection = await lockedProjection(tx, name)
    const resumed = await resumeHolds(tx, name, tenant, true)
    if (resumed.length === 0) {
      const whose = tenant === undefined ? '' : ` for tenant ${tenant}`
      throw new Problem('conflict', { projectionStatus: projection.status }, `${name} has not failed${whose}: there is no event to skip`)
    }
    return resumed
  })
  for (const { tenant, generation, failure } of skipped) {
    await runner.record(name, 'ProjectionSkippedEvent', { tenant, generation, position: failure.position, eventId: failure.eventId, error: failure.message })
  }
  await runner.changed()
}

// Clear and replay in place: the live generation's documents go and its checkpoint returns to 0. A
// backfill in progress is cancelled: whatever it was building or applying is cleared with the rest.
export const resetProjection = async (sql: Sql, runner: ProjectionRunner, name: string): Promise<void> => {
  await runner.stopLocal(name)
  const cancelled = await changeProjection(sql, name, async (tx) => {
    const projection = await lockedProjection(tx, name)
    const [active] = await tx<{ id: string }[]>`select id from projection_backfills where projection = ${name} and status in ${tx(ACTIVE)}`
    const cancelled = active ? await finishBackfill(tx, active.id, 'cancelled', 'projection reset') : undefined
    await dropGenerations(tx, name, 'building')
    await tx`delete from projection_documents where projection = ${name} and generation = ${projection.liveGeneration}`
    await tx`delete from projection_tenant_holds where projection = ${name} and generation = ${projection.liveGeneration}`
    await setCheckpoint(tx, name, projection.liveGeneration, 0)
    await tx`update projections set status = 'running', last_error = null, updated_at = now() where name = ${name}`
    return cancelled
  })
  if (cancelled) {
    await runner.stopJob(cancelled.id)
    await recordCancelled(runner, cancelled, 'projection reset')
  }
  await runner.changed()
  await runner.record(name, 'ProjectionStarted', { reset: true })
}

// PUT /projections/{name}: created (201) or not (200), with the view read in the same transaction. A changed
// definition starts an atomic rebuild and supersedes a run still going for the old one (SPEC "Projections").
export const defineProjection = async (
  sql: Sql,
  runner: ProjectionRunner,
  name: string,
  definition: DeclarativeDefinition,
  head: number,
  scope: TenantScope = 'every',
): Promise<{ created: boolean; view: ProjectionView }> => {
  const put = await putDeclarative(sql, name, definition, async (tx) => viewOf(tx, await getProjection(tx, name), head, scope))
  if (put.outcome === 'rebuilding') {
    if (put.cancelled) await recordCancelled(runner, put.cancelled, 'superseded by a new definition')
    await runner.record(name, 'ProjectionBackfillRequested', { backfillId: put.backfillId, request: { criteria: 'full-rebuild', atomic: true, requestedBy: 'definition-change' } })
  }
  if (put.outcome !== 'unchanged') await runner.changed()
  if (put.outcome === 'created') await runner.record(name, 'ProjectionStarted')
  return { created: put.outcome === 'created', view: put.view }
}

// DELETE /projections/{name}: a run in progress is cancelled first, in the same transaction.
export const removeProjection = async (sql: Sql, runner: ProjectionRunner, name: string): Promise<void> => {
  await getProjection(sql, name)
  await runner.stopLocal(name)
  const cancelled = await deleteProjection(sql, name)
  if (cancelled) {
    await runner.stopJob(cancelled.id)
    await recordCancelled(runner, cancelled, 'projection deleted')
  }
  await runner.changed()
}
