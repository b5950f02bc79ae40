import type { Sql, Tx } from '../db/connect.js'
import { eventTextColumns } from '../events/event-columns.js'
import { parseStoredText } from '../events/event-json.js'
import { parseExact } from '../events/exact-json.js'
import type { StoredEventText } from '../events/read-log-text.js'
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
// only when the source names a `$` category. Bounded by the gap-safe head like every log read.
export const readSourceEvents = async (
  sql: Sql,
  source: ProjectionSource,
  after: number,
  head: number,
  limit: number,
  exact: boolean,
): Promise<SourceBatch> => {
  if (head <= after) return { events: [], scannedTo: after }
  const rows = await sql<(StoredEventText & { tenant: string })[]>`
    select tenant, ${eventTextColumns(sql)}
      from events
     where global_position > ${after}
       and global_position <= ${head}
       ${sourceConditions(sql, source)}
     order by global_position
     limit ${limit}`
  const events = rows.map((row) => parseEvent(row, exact))
  const scannedTo = events.length === limit ? events.at(-1)!.globalPosition : head
  return { events, scannedTo }
}

// Declarative handlers copy values into documents exactly (SPEC "Details"), so they get every number a double
// cannot keep as a JsonNumber; code handlers get plain JS values.
export const parseEvent = <T extends StoredEventText & { tenant: string }>(row: T, exact: boolean) =>
  parseStoredText(row, exact ? parseExact : JSON.parse)
