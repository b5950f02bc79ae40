import { streamNotFound } from '../problems.js'
import type { Sql } from '../db/connect.js'
import { eventColumns, eventTextColumns } from './event-columns.js'
import { DEFAULT_MAX_PAGE_BYTES, eventPage, takePage, type PageColumns } from './event-page.js'
import type { StoredEventText } from './read-log-text.js'
import type { StoredEvent, StreamPage, StreamReadQuery } from './schemas.js'
import { storageTenant } from './types.js'

export interface ReadStreamQuery extends StreamReadQuery {
  // MAX_PAGE_BYTES: the page stops early once it holds this many bytes of events (always at least one)
  maxBytes?: number
}

export interface StreamTextPage extends Omit<StreamPage, 'events'> {
  events: StoredEventText[]
}

export const readStream = (sql: Sql, tenant: string, streamId: string, query: ReadStreamQuery): Promise<StreamPage> =>
  readPage<StoredEvent>(sql, tenant, streamId, query, eventColumns(sql))

// The same page with data and metadata as stored JSON text, for the HTTP read (event-json.ts).
export const readStreamText = (sql: Sql, tenant: string, streamId: string, query: ReadStreamQuery): Promise<StreamTextPage> =>
  readPage<StoredEventText>(sql, tenant, streamId, query, eventTextColumns(sql))

const readPage = async <E extends { globalPosition: number; streamVersion: number }>(
  sql: Sql,
  tenant: string,
  streamId: string,
  query: ReadStreamQuery,
  columns: ReturnType<typeof eventColumns>,
): Promise<{ streamId: string; version: number; events: E[]; next: number | null }> => {
  const owner = storageTenant(tenant, streamId)
  const limit = query.limit ?? 100
  const forward = query.direction !== 'backward'
  // with `until`, the head is the last version written by then: the stream as it was at that time
  const head = query.until
    ? sql`select max(stream_version) as version from events where tenant = ${owner} and stream_id = ${streamId} and created_at <= ${query.until}`
    : sql`select version from streams where tenant = ${owner} and stream_id = ${streamId}`
  const range = forward
    ? sql`stream_version >= ${query.from ?? 1} and stream_version <= head.version`
    : sql`stream_version <= least(${query.from ?? null}::bigint, head.version)`
  const page = eventPage<E>(sql, columns, sql`tenant = ${owner} and stream_id = ${streamId} and ${range}`, {
    order: forward ? sql`stream_version asc` : sql`stream_version desc`,
    key: sql`stream_version`,
    limit,
    maxBytes: query.maxBytes ?? DEFAULT_MAX_PAGE_BYTES,
  })
  const rows = await sql<(E & PageColumns & { head: number | null })[]>`
    with head as (${head})
    select head.version as head, page.*
      from head
      left join lateral (${page}) as page on true
     where head.version is not null`
  const version = rows[0]?.head
  if (!version) throw streamNotFound(streamId)
  // `following` is the version after the page's last event in the page's direction: where the next page starts
  const { events, following } = takePage(rows.filter((row) => row.globalPosition !== null).map(({ head: _, ...row }) => row as unknown as E & PageColumns))
  return { streamId, version, events, next: following }
}
