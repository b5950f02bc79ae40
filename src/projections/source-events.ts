import type { Sql, Tx } from '../db/connect.js'
import { eventColumns } from '../events/event-columns.js'
import { eventPage, takePage } from '../events/event-page.js'
import { SYSTEM_TENANT } from '../events/types.js'
import type { ProjectionEvent, ProjectionSource } from './types.js'

export interface SourceBatch {
  events: ProjectionEvent[]
  // the position this batch has looked through: the checkpoint after applying it
  scannedTo: number
}

// The events a source takes, as `and …` conditions: every tenant's (documents belong to the event's tenant),
// system events only when the source names a `$` category.
export const sourceConditions = (sql: Sql | Tx, { types, categories }: ProjectionSource) => {
  const system = categories?.some((category) => category.startsWith('$')) ?? false
  return sql`
    ${system ? sql`` : sql`and tenant <> ${SYSTEM_TENANT}`}
    ${types?.length ? sql`and type = any(${types}::text[])` : sql``}
    ${categories?.length ? sql`and category = any(${categories}::text[])` : sql``}`
}

// Projections read every tenant's events (documents belong to the event's tenant); system events
// only when the source names a `$` category. Bounded by the gap-safe head like every log read, and by
// `limit` events and `maxBytes` of them (always one), so large events cost a worker bounded memory.
export const readSourceEvents = async (
  sql: Sql,
  source: ProjectionSource,
  after: number,
  head: number,
  { limit, maxBytes }: { limit: number; maxBytes: number },
): Promise<SourceBatch> => {
  if (head <= after) return { events: [], scannedTo: after }
  const rows = await eventPage<ProjectionEvent>(
    sql,
    sql`tenant, ${eventColumns(sql)}`,
    sql`global_position > ${after} and global_position <= ${head} ${sourceConditions(sql, source)}`,
    { order: sql`global_position`, key: sql`global_position`, limit, maxBytes },
  )
  const { events, following } = takePage(rows)
  // the next batch starts right after the last event when more follow; else every match up to head is here
  const scannedTo = following !== null ? events.at(-1)!.globalPosition : head
  return { events, scannedTo }
}
