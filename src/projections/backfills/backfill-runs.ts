import { randomUUID } from 'node:crypto'
import { Problem } from '../../problems.js'
import type { Sql, Tx } from '../../db/connect.js'
import { isUniqueViolation } from '../../db/pg-errors.js'
import { isAtomic, type BackfillRequest } from './backfill-request-schema.js'
import { createGeneration, dropGeneration, dropGenerations } from '../generations.js'
import type { DeclarativeDefinition } from '../definition-schema.js'
import type { BackfillStatus, BackfillView } from '../schemas.js'

export const ACTIVE: BackfillStatus[] = ['queued', 'running', 'swapping']
export const TERMINAL: BackfillStatus[] = ['completed', 'failed', 'cancelled']

export interface BackfillRow {
  id: string
  projection: string
  status: BackfillStatus
  request: BackfillRequest
  atomic: boolean
  generation: number
  afterPosition: number
  toPosition: number | null
  fromTime: string | null
  toTime: string | null
  partitions: number
  total: number | null
  processed: number
  snapshotId: string | null
  requestedBy: string | null
  correlationId: string | null
  error: string | null
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
  now: string
}

const backfillColumns = (sql: Sql | Tx) => sql`
  b.id, b.projection, b.status, b.request, b.atomic, b.generation, b.after_position as "afterPosition",
  b.to_position as "toPosition", b.from_time as "fromTime", b.to_time as "toTime", b.partitions, b.total,
  coalesce((select sum(p.processed) from projection_backfill_partitions p where p.backfill = b.id), 0)::bigint as processed,
  b.snapshot_id as "snapshotId", b.requested_by as "requestedBy", b.correlation_id as "correlationId", b.error,
  b.created_at as "createdAt", b.started_at as "startedAt", b.finished_at as "finishedAt", now() as now`

export const backfillNotFound = (id: string): Problem => new Problem('backfill-not-found', { id }, `no backfill ${id}`)

export const viewOfBackfill = (row: BackfillRow): BackfillView => {
  const total = row.total
  const done = row.status === 'completed' || row.status === 'swapping'
  const percent = total === null ? 0 : total === 0 ? (done ? 100 : 0) : Math.min(100, Math.round((row.processed / total) * 10_000) / 100)
  const end = row.finishedAt ?? row.now
  const seconds = row.startedAt === null ? 0 : Math.max(0.001, (Date.parse(end) - Date.parse(row.startedAt)) / 1000)
  const eventsPerSecond = seconds === 0 ? 0 : Math.round(row.processed / seconds)
  const remaining = total === null ? null : Math.max(0, total - row.processed)
  const etaSeconds =
    TERMINAL.includes(row.status) || row.status === 'swapping'
      ? 0
      : remaining === null || eventsPerSecond === 0
        ? null
        : Math.ceil(remaining / eventsPerSecond)
  return {
    id: row.id,
    projection: row.projection,
    status: row.status,
    criteria: row.request.criteria,
    atomic: row.atomic,
    maxConcurrency: row.partitions,
    processed: row.processed,
    total,
    percent,
    eventsPerSecond,
    etaSeconds,
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    error: row.error,
    requestedBy: row.requestedBy,
    correlationId: row.correlationId,
    generation: row.generation,
    snapshotId: row.snapshotId,
    request: row.request,
  }
}

// As for a projection's lastError (projection-view.ts): a run's error may hold the database's words or a code
// handler's, from an event of any tenant; keys below admin read that it failed, admin keys read why.
export const BACKFILL_ERROR_WITHHELD = 'the backfill failed; its error is shown to admin keys only'

export const backfillViewFor = (view: BackfillView, admin: boolean): BackfillView =>
  admin || view.error === null ? view : { ...view, error: BACKFILL_ERROR_WITHHELD }

export const getBackfill = async (sql: Sql | Tx, projection: string, id: string): Promise<BackfillRow> => {
  const [row] = await sql<BackfillRow[]>`
    select ${backfillColumns(sql)} from projection_backfills b where b.id = ${id} and b.projection = ${projection}`
  if (!row) throw backfillNotFound(id)
  return row
}

export const listBackfills = (sql: Sql, projection: string): Promise<BackfillRow[]> =>
  sql<BackfillRow[]>`
    select ${backfillColumns(sql)}
      from projection_backfills b
     where b.projection = ${projection}
     order by b.created_at desc, b.id
     limit 1000`

export const activeBackfills = (sql: Sql): Promise<BackfillRow[]> =>
  sql<BackfillRow[]>`select ${backfillColumns(sql)} from projection_backfills b where b.status in ${sql(ACTIVE)}`

export interface NewBackfill {
  projection: string
  request: BackfillRequest
  partitions: number
  correlationId?: string | null
}

// Queues a run, inside a transaction holding the projection lock exclusively. An atomic one gets its own generation at once, built beside the live one, so the
// projection reads as rebuilding from this moment; its worker waits until the run's selected events
// are in (status swapping).
export const createBackfill = async (tx: Tx, backfill: NewBackfill): Promise<string> => {
  const id = randomUUID()
  const atomic = isAtomic(backfill.request)
  const [projection] = await tx<{ liveGeneration: number; definition: unknown; definitionVersion: number }[]>`
    select live_generation as "liveGeneration", definition, definition_version as "definitionVersion"
      from projections
     where name = ${backfill.projection}`
  if (!projection) throw new Problem('projection-not-found', { name: backfill.projection }, `no projection named ${backfill.projection}`)
  const [active] = await tx<{ id: string }[]>`
    select id from projection_backfills where projection = ${backfill.projection} and status in ${tx(ACTIVE)}`
  if (active) throw inProgress(backfill.projection, active.id)
  let generation = projection.liveGeneration
  if (atomic) {
    await dropGenerations(tx, backfill.projection, 'building')
    generation = await createGeneration(tx, backfill.projection, {
      definition: projection.definition as DeclarativeDefinition | null,
      definitionVersion: projection.definitionVersion,
      state: 'building',
      backfill: id,
    })
  }
  try {
    await tx`savepoint create_backfill`
    await tx`
      insert into projection_backfills (id, projection, request, atomic, generation, after_position, partitions, requested_by, correlation_id)
      values (${id}, ${backfill.projection}, ${tx.json(backfill.request as never)}, ${atomic}, ${generation}, 0,
              ${backfill.partitions}, ${backfill.request.requestedBy ?? null}, ${backfill.correlationId ?? null})`
    await tx`release savepoint create_backfill`
  } catch (error) {
    if (isUniqueViolation(error, 'projection_backfills_active_idx')) throw inProgress(backfill.projection)
    throw error
  }
  return id
}

const inProgress = (projection: string, id?: string): Problem =>
  new Problem('backfill-in-progress', { projection, ...(id ? { backfillId: id } : {}) }, `a backfill of ${projection} is already queued or running`)

// A non-atomic run's snapshot (SPEC: taken before the run changes live documents), recorded in the transaction that
// takes it: a run retried after the database was away finds it and takes no other, so a run has at most one.
export const claimSnapshot = async (tx: Tx, id: string, snapshotId: string): Promise<void> => {
  const [claimed] = await tx`
    update projection_backfills set snapshot_id = ${snapshotId}, updated_at = now()
     where id = ${id} and status = 'queued' and snapshot_id is null
    returning id`
  if (!claimed) throw new Error(`backfill ${id} is no longer queued without a snapshot`)
}

// Ends a run that has not ended, inside a transaction holding the projection lock exclusively. An atomic
// run's generation goes with it, so the live one is untouched. Partition batches and the generation's
// worker hold that lock shared while they write, so every batch in flight has committed before anything
// is dropped, and a batch that starts later sees the run ended.
export const finishBackfill = async (
  tx: Tx,
  id: string,
  status: 'completed' | 'failed' | 'cancelled',
  error: string | null = null,
): Promise<BackfillRow | undefined> => {
  const [row] = await tx<BackfillRow[]>`
    update projection_backfills b
       set status = ${status}, error = ${error}, finished_at = now(), updated_at = now()
     where b.id = ${id}
       and b.status in ${tx(ACTIVE)}
    returning ${backfillColumns(tx)}`
  if (!row) return undefined
  if (row.atomic && status !== 'completed') await dropGeneration(tx, row.projection, row.generation)
  return row
}
