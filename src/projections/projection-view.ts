import type { Sql, Tx } from '../db/connect.js'
import { documentCount, listGenerations, type ProjectionRow } from './definitions.js'
import type { ProjectionView } from './schemas.js'
import type { ProjectionStatus } from './types.js'

// A projection this far behind the head reads as catching-up rather than running.
export const CATCHING_UP_LAG = 1000

export const viewOf = async (sql: Sql | Tx, row: ProjectionRow, head: number): Promise<ProjectionView> => {
  const generations = await listGenerations(sql, row.name)
  const live = generations.find((generation) => generation.generation === row.liveGeneration)
  const position = live?.position ?? 0
  const lag = Math.max(0, head - position)
  const rebuilding = generations.some((generation) => generation.state === 'building')
  const status: ProjectionStatus =
    row.status !== 'running' ? row.status : rebuilding ? 'rebuilding' : lag >= CATCHING_UP_LAG ? 'catching-up' : 'running'
  return {
    name: row.name,
    kind: row.kind,
    status,
    position,
    head,
    lag,
    documents: await documentCount(sql, row.name, row.liveGeneration),
    lastError: row.lastError,
    definitionVersion: row.definitionVersion,
    updatedAt: row.updatedAt,
    definition: row.definition,
  }
}

// What keys below admin read in place of a failure's message (SPEC "Details": lastError never carries database
// error text to non-admin keys). The message may hold the database's words, or whatever a code handler put in its
// error, from an event of any tenant (projections are global); such keys learn where the projection failed and
// that it did, an admin key (or anyone on a server without keys) reads why.
export const FAILURE_MESSAGE_WITHHELD = 'the handler failed on this event; its message is shown to admin keys only'

export const projectionViewFor = (view: ProjectionView, admin: boolean): ProjectionView =>
  admin || view.lastError === null ? view : { ...view, lastError: { ...view.lastError, message: FAILURE_MESSAGE_WITHHELD } }
