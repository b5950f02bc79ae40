import type { Sql } from '../db/connect.js'
import { eventColumns } from './event-columns.js'
import { readTenant, type StoredEvent } from './types.js'

export interface LogQuery {
  after?: number
  limit?: number
  types?: string[]
  category?: string
  streamId?: string
  since?: string
  until?: string
  correlationId?: string
}

export interface LogPage {
  events: StoredEvent[]
  next: number | null
  head: number
}

// Stream ids use only ASCII below '~', so under collate "C" every id with this prefix sorts before prefix + '~'.
const PREFIX_END = '~'

// The rows of one read of the log: the tenant's (or the system streams') events in (after, head] that pass the filters.
// gap safety: callers pass a head from LogHead; nothing above it is read, so nothing can appear below it later
export const logConditions = (sql: Sql, tenant: string, head: number, query: LogQuery) => {
  const owner = readTenant(tenant, query.streamId ?? query.category)
  const { types, category, streamId, since, until, correlationId } = query
  return sql`
         tenant = ${owner}
     and global_position > ${query.after ?? 0}
     and global_position <= ${head}
     ${types?.length ? sql`and type = any(${types}::text[])` : sql``}
     ${category !== undefined ? sql`and category = ${category}` : sql``}
     ${streamId !== undefined ? sql`and stream_id >= ${streamId} and stream_id < ${streamId + PREFIX_END}` : sql``}
     ${since !== undefined ? sql`and created_at >= ${since}` : sql``}
     ${until !== undefined ? sql`and created_at <= ${until}` : sql``}
     ${correlationId !== undefined ? sql`and metadata ->> 'correlationId' = ${correlationId}` : sql``}`
}

// `next` when the page is full and stopped below head: the `after` of the following page
export const nextAfter = (positions: number, limit: number, last: number | undefined, head: number): number | null =>
  positions === limit && last !== undefined && last < head ? last : null

export const readLog = async (sql: Sql, tenant: string, head: number, query: LogQuery): Promise<LogPage> => {
  const limit = query.limit ?? 100
  const events = await sql<StoredEvent[]>`
    select ${eventColumns(sql)}
      from events
     where ${logConditions(sql, tenant, head, query)}
     order by global_position
     limit ${limit}`
  return { events, next: nextAfter(events.length, limit, events.at(-1)?.globalPosition, head), head }
}
