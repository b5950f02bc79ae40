import { Problem } from '../problems.js'
import type { Sql, Tx } from '../db/connect.js'
import { ACTIVE, createBackfill, finishBackfill, type BackfillRow } from './backfills/backfill-runs.js'
import { createGeneration } from './generations.js'
import { changeProjection } from './projection-lock.js'
import type { DeclarativeDefinition } from './definition-schema.js'
import type { ProjectionView } from './schemas.js'
import type { ProjectionKind } from './types.js'

export interface ProjectionRow {
  name: string
  kind: ProjectionKind
  definition: DeclarativeDefinition | null
  definitionVersion: number
  status: 'running' | 'stopped' | 'failed'
  liveGeneration: number
  lastError: ProjectionView['lastError']
  updatedAt: string
}

export interface GenerationRow {
  projection: string
  generation: number
  definition: DeclarativeDefinition | null
  definitionVersion: number
  position: number
  state: 'live' | 'building' | 'retired'
  // the atomic backfill building this generation, if one did
  backfill: string | null
}

const projectionColumns = (sql: Sql | Tx) => sql`
  name, kind, definition, definition_version as "definitionVersion", status,
  live_generation as "liveGeneration", last_error as "lastError", updated_at as "updatedAt"`

const generationColumns = (sql: Sql | Tx) => sql`
  projection, generation, definition, definition_version as "definitionVersion", position, state, backfill`

export const notFound = (name: string): Problem =>
  new Problem('projection-not-found', { name }, `no projection named ${name}`)

export const getProjection = async (sql: Sql | Tx, name: string): Promise<ProjectionRow> => {
  const [row] = await sql<ProjectionRow[]>`select ${projectionColumns(sql)} from projections where name = ${name}`
  if (!row) throw notFound(name)
  return row
}

export const listProjections = (sql: Sql): Promise<ProjectionRow[]> =>
  sql<ProjectionRow[]>`select ${projectionColumns(sql)} from projections order by name`

export const listGenerations = (sql: Sql | Tx, name?: string): Promise<GenerationRow[]> =>
  sql<GenerationRow[]>`
    select ${generationColumns(sql)}
      from projection_generations
     ${name === undefined ? sql`` : sql`where projection = ${name}`}
     order by projection, generation`

export type PutOutcome =
  | { outcome: 'created' | 'unchanged' }
  | { outcome: 'rebuilding'; backfillId: string; cancelled: BackfillRow | undefined }

// what the caller reads of the projection in the same transaction: a DELETE racing right behind cannot
// turn the PUT's answer into a 404
export type Described<V> = PutOutcome & { view: V }

// A changed definition never edits the live documents: it starts an atomic full rebuild, a new
// generation built beside the live one that replaces it once caught up (SPEC "Backfills and rebuilds").
// A backfill still running for the old definition is superseded. Racing creations of one name queue on
// the projection lock: the first creates (201), the others find it and answer as a PUT of an existing one.
export const putDeclarative = <V>(
  sql: Sql,
  name: string,
  definition: DeclarativeDefinition,
  describe: (tx: Tx) => Promise<V>,
): Promise<Described<V>> =>
  changeProjection(sql, name, async (tx) => {
    const outcome = await applyDefinition(tx, name, definition)
    return { ...outcome, view: await describe(tx) }
  })

const applyDefinition = async (tx: Tx, name: string, definition: DeclarativeDefinition): Promise<PutOutcome> => {
  const [current] = await tx<{ kind: ProjectionKind; same: boolean }[]>`
    select kind, definition = ${tx.json(definition as never)} as same
      from projections
     where name = ${name}`
  if (!current) {
    await tx`
      insert into projections (name, kind, definition, definition_version, status, live_generation)
      values (${name}, 'declarative', ${tx.json(definition as never)}, 1, 'running', 1)`
    await createGeneration(tx, name, { definition, definitionVersion: 1, state: 'live' })
    return { outcome: 'created' }
  }
  if (current.kind === 'code') throw new Problem('conflict', { name }, `${name} is a code projection from PROJECTIONS_DIR`)
  if (current.same) return { outcome: 'unchanged' }
  const [active] = await tx<{ id: string }[]>`
    select id from projection_backfills where projection = ${name} and status in ('queued', 'running', 'swapping')`
  const cancelled = active ? await finishBackfill(tx, active.id, 'cancelled', 'superseded by a new definition') : undefined
  // versions only grow, also after a rollback brought an older one back
  await tx`
    update projections
       set definition = ${tx.json(definition as never)},
           definition_version = (select max(definition_version) + 1 from projection_generations where projection = ${name}),
           updated_at = now()
     where name = ${name}`
  const backfillId = await createBackfill(tx, {
    projection: name,
    request: { criteria: 'full-rebuild', atomic: true, requestedBy: 'definition-change' },
    partitions: 1,
  })
  return { outcome: 'rebuilding', backfillId, cancelled }
}

export const registerCode = async (sql: Sql, name: string): Promise<void> => {
  await changeProjection(sql, name, async (tx) => {
    const [row] = await tx<{ kind: ProjectionKind }[]>`
      insert into projections (name, kind, status, live_generation)
      values (${name}, 'code', 'running', 1)
      on conflict (name) do update set updated_at = projections.updated_at
      returning kind`
    if (row?.kind !== 'code') throw new Error(`code projection ${name} clashes with a declarative projection of that name`)
    const [generation] = await tx`select from projection_generations where projection = ${name} limit 1`
    if (!generation) await createGeneration(tx, name, { definition: null, definitionVersion: 1, state: 'live' })
  })
}

// A run in progress is cancelled first, in the same transaction (SPEC: DELETE cancels a running backfill);
// the caller records its cancellation.
export const deleteProjection = (sql: Sql, name: string): Promise<BackfillRow | undefined> =>
  changeProjection(sql, name, async (tx) => {
    const [active] = await tx<{ id: string }[]>`select id from projection_backfills where projection = ${name} and status in ${tx(ACTIVE)}`
    const cancelled = active ? await finishBackfill(tx, active.id, 'cancelled', 'projection deleted') : undefined
    const deleted = await tx`delete from projections where name = ${name} returning name`
    if (deleted.length === 0) throw notFound(name)
    await tx`delete from projection_documents where projection = ${name}`
    return cancelled
  })

// Answers the status it replaced.
export const setStatus = (
  sql: Sql,
  name: string,
  status: ProjectionRow['status'],
  lastError: ProjectionRow['lastError'] = null,
): Promise<ProjectionRow['status']> =>
  changeProjection(sql, name, async (tx) => {
    const [before] = await tx<{ status: ProjectionRow['status'] }[]>`select status from projections where name = ${name}`
    if (!before) throw notFound(name)
    await tx`
      update projections
         set status = ${status}, last_error = ${lastError === null ? null : tx.json(lastError as never)}, updated_at = now()
       where name = ${name}`
    return before.status
  })

export const documentCount = async (sql: Sql | Tx, name: string, generation: number): Promise<number> => {
  const [row] = await sql<{ count: number }[]>`
    
    select count(*) as count
      from projection_documents
     where projection = ${name} and generation = ${generation} and document is not null`
  return row?.count ?? 0
}
