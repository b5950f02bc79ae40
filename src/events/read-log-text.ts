import type { Sql } from '../db/connect.js'
import { ChunkedPage } from './chunked-page.js'
import { eventTextColumns } from './event-columns.js'
import { eventPage, takePage } from './event-page.js'
import { logBounds, logConditions, nextAfter, type LogQuery } from './read-log.js'
import type { StoredEvent } from './schemas.js'

// A stored event with `data` and `metadata` as their stored JSON text and `createdAt` formatted by the
// database: what a reader that only passes events on (an SSE replay) needs, without parsing and re-encoding.
// `personal` is the event's sealed personal part as event-columns.ts reads it (null: no subject), for openEvent.
export type StoredEventText = Omit<StoredEvent, 'data' | 'metadata' | 'subject' | 'personalData' | 'forgotten'> & {
  data: string
  metadata: string
  personal?: string | null
}

export interface LogTextPage {
  events: StoredEventText[]
  next: number | null
}

// readLog's rows and paging, as text. `createdAt` is spelled as toISOString() spells it (connect.ts).
export const readLogText = async (sql: Sql, tenant: string, head: number, query: LogQuery): Promise<LogTextPage> => {
  const rows = await eventPage<StoredEventText>(sql, eventTextColumns(sql), logConditions(sql, tenant, head, query), logBounds(sql, query))
  const { events, following } = takePage(rows)
  return { events, next: nextAfter(events.at(-1)?.globalPosition, following) }
}

// The same page read as chunks of at most `chunkBytes` (chunked-page.ts), anchored on global positions; `head`
// keeps every chunk on the same rows. Its `next` is nextAfter(page.anchor, page.following).
export const readLogChunks = (sql: Sql, tenant: string, head: number, query: LogQuery, chunkBytes: number): Promise<ChunkedPage<StoredEventText>> => {
  const { limit, maxBytes } = logBounds(sql, query)
  const read = async (after: number | undefined, chunkLimit: number, chunkMaxBytes: number) => {
    const chunkQuery = { ...query, after: after ?? query.after, limit: chunkLimit, maxBytes: chunkMaxBytes }
    return takePage<StoredEventText>(await eventPage<StoredEventText>(sql, eventTextColumns(sql), logConditions(sql, tenant, head, chunkQuery), logBounds(sql, chunkQuery)))
  }
  return ChunkedPage.open(read, (event: StoredEventText) => event.globalPosition, { limit, maxBytes, chunkBytes })
}
