import type { Sql } from '../db/connect.js'
import { eventTextColumns } from './event-columns.js'
import { eventPage, takePage } from './event-page.js'
import type { StoredEventText } from './read-log-text.js'

// A stored event, as stored text (so it reads back exactly as sent), with the tenant (or `$` for system streams)
// it belongs to and its `metadata.correlationId` as /events compares it (`->>`), for filtering in memory.
export interface TenantEvent {
  tenant: string
  event: StoredEventText & { correlationId: string | null }
}

export interface LogBatch {
  events: TenantEvent[]
  // every event up to here has been read: the last event's position when more follow, else `head`
  readTo: number
}

// One read of the log for every tenant at once, unfiltered: what a fan-out hands out to all its readers. At most
// `limit` events and `maxBytes` of them (always one), so a batch of large events costs bounded memory.
// gap safety: `head` comes from LogHead; nothing above it is read (SPEC "The global log").
export const readLogBatch = async (sql: Sql, after: number, head: number, limit: number, maxBytes: number): Promise<LogBatch> => {
  if (head <= after) return { events: [], readTo: after }
  const rows = await eventPage<StoredEventText & { tenant: string; correlationId: string | null }>(
    sql,
    sql`tenant, ${eventTextColumns(sql)}, metadata ->> 'correlationId' as "correlationId"`,
    sql`global_position > ${after} and global_position <= ${head}`,
    { order: sql`global_position`, key: sql`global_position`, limit, maxBytes },
  )
  const page = takePage(rows)
  const events = page.events.map(({ tenant, ...event }) => ({ tenant, event }))
  return { events, readTo: page.following !== null ? events.at(-1)!.event.globalPosition : head }
}
