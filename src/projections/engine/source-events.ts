import type { Sql, Tx } from '../../db/connect.js'
import { eventTextColumns } from '../../events/event-columns.js'
import { openEvent, parseStoredText } from '../../events/event-json.js'
import type { Keyring } from '../../events/keyring.js'
import { eventPage, takePage } from '../../events/event-page.js'
import { parseExact } from '../../events/exact-json.js'
import type { StoredEventText } from '../../events/read-log-text.js'
import { SYSTEM_TENANT } from '../../events/types.js'
import type { ProjectionEvent, ProjectionSource } from '../types.js'

export interface SourceBatch {
  events: ProjectionEvent[]
  // the position this batch has looked through: the checkpoint after applying it
  readTo: number
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
// `limit` events and `maxBytes` of them (always one), so large events cost a worker bounded memory. With
// `tenant`, that tenant's only (a held tenant's catch-up, docs/projection-failures.md).
export const readSourceEvents = async (
  sql: Sql,
  source: ProjectionSource,
  after: number,
  head: number,
  { limit, maxBytes, exact, tenant, keyring }: { limit: number; maxBytes: number; exact: boolean; tenant?: string; keyring?: Keyring | undefined },
): Promise<SourceBatch> => {
  if (head <= after) return { events: [], readTo: after }
  const rows = await eventPage<StoredEventText & { tenant: string }>(
    sql,
    sql`tenant, ${eventTextColumns(sql)}`,
    sql`global_position > ${after} and global_position <= ${head} ${sourceConditions(sql, source)} ${tenant === undefined ? sql`` : sql`and tenant = ${tenant}`}`,
    { order: sql`global_position`, key: sql`global_position`, limit, maxBytes },
  )
  const page = takePage(rows)
  const events = page.events.map((row) => parseEvent(row, exact, keyring))
  // the next batch starts right after the last event when more follow; else every match up to head is here
  const readTo = page.following !== null ? events.at(-1)!.globalPosition : head
  return { events, readTo }
}

// Declarative handlers copy values into documents exactly (SPEC "Details"), so they get every number a double
// cannot keep as a JsonNumber; code handlers get plain JS values. Personal data is opened first (SPEC "Personal data":
// handlers read `$.personalData.<field>`, missing once the subject is forgotten).
export const parseEvent = <T extends StoredEventText & { tenant: string }>(row: T, exact: boolean, keyring: Keyring | undefined) =>
  parseStoredText(openEvent(row, keyring), exact ? parseExact : JSON.parse)
