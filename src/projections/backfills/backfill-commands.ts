import { Problem } from '../../problems.js'
import type { Sql, Tx } from '../../db/connect.js'
import { projectorFor, type Projector } from '../engine/apply-event.js'
import { checkBackfillRequest, checkConcurrency } from './backfill-request-schema.js'
import { ACTIVE, createBackfill, finishBackfill, getBackfill, viewOfBackfill, type BackfillRow } from './backfill-runs.js'
import type { BackfillView } from '../schemas.js'
import type { ProjectionRunner } from '../runner.js'
import { swapLive } from '../generations.js'
import { changeProjection } from '../projection-lock.js'
import { getProjection } from '../definitions.js'

export interface RequestOptions {
  correlationId?: string | null
}

// The projector a new run of the projection would use: its live definition, or its code module.
export const projectorOf = async (sql: Sql | Tx, runner: ProjectionRunner, name: string): Promise<Projector | undefined> => {
  const projection = await getProjection(sql, name)
  return projectorFor(projection, projection.definition, runner.codeProjections)
}

// POST …/backfills and a ProjectionBackfillRequested event alike (SPEC "Backfills and rebuilds").
export const requestBackfill = async (
  sql: Sql,
  runner: ProjectionRunner,
  name: string,
  body: unknown,
  options: RequestOptions = {},
): Promise<BackfillView> => {
  const request = checkBackfillRequest(body)
  // The view is read before commit: a job may pick the run up the moment it commits, and the answer
  // describes the run as requested (SPEC: `202 {id, status: "queued", …}`).
  const view = await changeProjection(sql, name, async (tx) => {
    const partitions = checkConcurrency(request, await projectorOf(tx, runner, name))
    const id = await createBackfill(tx, { projection: name, request, partitions, correlationId: options.correlationId })
    return viewOfBackfill(await getBackfill(tx, name, id))
  })
  await runner.record(name, 'ProjectionBackfillRequested', { backfillId: view.id, request }, options.correlationId)
  await runner.changed()
  return view
}

// Ends a run at once: an atomic one's generation goes (the live one was never touched); a non-atomic
// one leaves what it applied, which its snapshot can undo.
export const cancelBackfill = async (sql: Sql, runner: ProjectionRunner, name: string, id: string, reason = 'cancelled'): Promise<BackfillView> => {
  const current = await getBackfill(sql, name, id)
  if (!ACTIVE.includes(current.status)) {
    throw new Problem('conflict', { backfillStatus: current.status }, `backfill ${id} has already ended (${current.status})`)
  }
  const cancelled = await changeProjection(sql, name, (tx) => finishBackfill(tx, id, 'cancelled', reason === 'cancelled' ? null : reason))
  await runner.stopJob(id)
  await runner.changed()
  if (cancelled) await recordCancelled(runner, cancelled, reason)
  return viewOfBackfill(await getBackfill(sql, name, id))
}

export const recordCancelled = (runner: ProjectionRunner, backfill: BackfillRow, reason: string): Promise<void> =>
  runner.record(backfill.projection, 'ProjectionBackfillCancelled', { backfillId: backfill.id, reason }, backfill.correlationId)

// Swaps the previous generation back in, with its definition; it catches up from its own position.
// Rolling back again swaps forward (SPEC "Details").
export const rollbackProjection = async (sql: Sql, runner: ProjectionRunner, name: string): Promise<void> => {
  const swapped = await changeProjection(sql, name, async (tx) => {
    const [projection] = await tx<{ liveGeneration: number }[]>`
      select live_generation as "liveGeneration" from projections where name = ${name}`
    if (!projection) throw new Problem('projection-not-found', { name }, `no projection named ${name}`)
    const [active] = await tx<{ id: string }[]>`select id from projection_backfills where projection = ${name} and status in ${tx(ACTIVE)}`
    if (active) throw new Problem('backfill-in-progress', { projection: name, backfillId: active.id }, `a backfill of ${name} is in progress: cancel it before rolling back`)
    const [previous] = await tx<{ generation: number; definition: unknown; definitionVersion: number }[]>`
      select generation, definition, definition_version as "definitionVersion"
        from projection_generations
       where projection = ${name} and state = 'retired'
       order by generation desc
       limit 1`
    if (!previous) throw new Problem('conflict', { name }, `${name} has no previous generation to roll back to`)
    await swapLive(tx, name, previous.generation, projection.liveGeneration, previous)
    return { generation: previous.generation, previousGeneration: projection.liveGeneration }
  })
  await runner.stopLocal(name)
  await runner.changed()
  await runner.record(name, 'ProjectionRolledBack', swapped)
}
