import type { Sql } from '../db/connect.js'
import { eventTextColumns } from './event-columns.js'
import { logConditions, nextAfter, type LogQuery } from './read-log.js'
import type { StoredEvent } from './types.js'

// A stored event with `data` and `metadata` as their stored JSON text and `createdAt` formatted by the
// database: what a reader that only passes events on (an SSE replay) needs, without parsing and re-encoding.
export type StoredEventText = Omit<StoredEvent, 'data' | 'metadata'> & { data: string; metadata: string }

export interface LogTextPage {
  events: StoredEventText[]
  next: number | null
}

// readLog's rows and paging, as text. `createdAt` is spelled as toISOString() spells it (connect.ts).
export const readLogText = async (sql: Sql, tenant: string, head: number, query: LogQuery): Promise<LogTextPage> => {
  const limit = query.limit ?? 100
  const events = await sql<StoredEventText[]>`
    select ${eventTextColumns(sql)}
      from events
     where ${logConditions(sql, tenant, head, query)}
     order by global_position
     limit ${limit}`
  return { events, next: nextAfter(events.length, limit, events.at(-1)?.globalPosition, head) }
}
