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

// gap safety: callers pass a head from LogHead; nothing above it is read, so nothing can appear below it later
export const readLog = async (sql: Sql, tenant: string, head: number, query: LogQuery): Promise<LogPage> => {
  const limit = query.limit ?? 100
  const owner = readTenant(tenant, query.streamId ?? query.category)
  const { types, category, streamId, since, until, correlationId } = query
  const events = await sql<StoredEvent[]>`
    select ${eventColumns(sql)}
      from events
     where tenant = ${owner}
       and global_position > ${query.after ?? 0}
       and global_position <= ${head}
       ${types?.length ? sql`and type = any(${types}::text[])` : sql``}
       ${category !== undefined ? sql`and category = ${category}` : sql``}
       ${streamId !== undefined ? sql`and stream_id >= ${streamId} and stream_id < ${streamId + PREFIX_END}` : sql``}
       ${since !== undefined ? sql`and created_at >= ${since}` : sql``}
       ${until !== undefined ? sql`and created_at <= ${until}` : sql``}
       ${correlationId !== undefined ? sql`and metadata ->> 'correlationId' = ${correlationId}` : sql``}
     order by global_position
     limit ${limit}`
  const last = events.at(-1)
  const next = events.length === limit && last && last.globalPosition < head ? last.globalPosition : null
  return { events, next, head }
}
