import type { Sql } from '../db/connect.js'
import { eventColumns } from './event-columns.js'
import { DEFAULT_MAX_PAGE_BYTES, eventPage, takePage, type PageBounds } from './event-page.js'
import type { LogPage, LogReadQuery, StoredEvent } from './schemas.js'
import { readTenant } from './types.js'

// The filters of GET /events (its repeatable `type` as `types`), in the core's terms.
export interface LogQuery extends Omit<LogReadQuery, 'type'> {
  types?: string[]
  // MAX_PAGE_BYTES: the page stops early once it holds this many bytes of events (always at least one)
  maxBytes?: number
}

// Stream ids use only ASCII below '~', so under collate "C" every id with this prefix sorts before prefix + '~'.
const PREFIX_END = '~'

// The streamId prefix as a range on stream_id, guarded by whether any stream of the reader's has that prefix: one probe
// of streams_pkey, which PostgreSQL makes once before reading any event (an uncorrelated test is a One-Time Filter),
// and when it is false no event is read at all. Without it a prepared statement's generic plan, which cannot know
// how selective the prefix is, walks the log in position order to head and finds nothing (docs/gap-safety.md:
// "Filters"). Gap-safe: every event at or below head has committed, and with it, in the same append, its stream's
// row, which is never deleted; so if any event in (after, head] has the prefix, the guard sees its stream.
const streamPrefix = (sql: Sql, owner: string, prefix: string) => sql`
     and stream_id >= ${prefix}
     and stream_id < ${prefix + PREFIX_END}
     and exists (select from streams s where s.tenant = ${owner} and s.stream_id >= ${prefix} and s.stream_id < ${prefix + PREFIX_END})`

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
     ${streamId !== undefined ? streamPrefix(sql, owner, streamId) : sql``}
     ${since !== undefined ? sql`and created_at >= ${since}` : sql``}
     ${until !== undefined ? sql`and created_at <= ${until}` : sql``}
     ${correlationId !== undefined ? sql`and metadata ->> 'correlationId' = ${correlationId}` : sql``}`
}

// A log page's order, count and byte bounds (SPEC "Details": default limit 100, at most MAX_PAGE_BYTES).
export const logBounds = (sql: Sql, query: LogQuery): PageBounds => ({
  order: sql`global_position`,
  key: sql`global_position`,
  limit: query.limit ?? 100,
  maxBytes: query.maxBytes ?? DEFAULT_MAX_PAGE_BYTES,
})

// `next` when more matching events follow below head, because the page reached its limit or its byte budget:
// the `after` of the following page
export const nextAfter = (last: number | undefined, following: number | null): number | null =>
  following !== null && last !== undefined ? last : null

export const readLog = async (sql: Sql, tenant: string, head: number, query: LogQuery): Promise<LogPage> => {
  const rows = await eventPage<StoredEvent>(sql, eventColumns(sql), logConditions(sql, tenant, head, query), logBounds(sql, query))
  const { events, following } = takePage(rows)
  return { events, next: nextAfter(events.at(-1)?.globalPosition, following), head }
}
