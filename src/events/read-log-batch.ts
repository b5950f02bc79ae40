import type { Sql } from '../db/connect.js'
import { eventColumns } from './event-columns.js'
import type { StoredEvent } from './types.js'

// A stored event with the tenant (or `$` for system streams) it belongs to.
export interface TenantEvent {
  tenant: string
  event: StoredEvent
}

export interface LogBatch {
  events: TenantEvent[]
  // every event up to here has been read: the last event's position on a full batch, else `head`
  readTo: number
}

// One read of the log for every tenant at once, unfiltered: what a fan-out hands out to all its readers.
// gap safety: `head` comes from LogHead; nothing above it is read (SPEC "The global log").
export const readLogBatch = async (sql: Sql, after: number, head: number, limit: number): Promise<LogBatch> => {
  if (head <= after) return { events: [], readTo: after }
  const rows = await sql<(StoredEvent & { tenant: string })[]>`
    select tenant, ${eventColumns(sql)}
      from events
     where global_position > ${after}
       and global_position <= ${head}
     order by global_position
     limit ${limit}`
  const events = rows.map(({ tenant, ...event }) => ({ tenant, event }))
  return { events, readTo: rows.length === limit ? rows.at(-1)!.globalPosition : head }
}
