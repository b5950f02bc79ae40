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
