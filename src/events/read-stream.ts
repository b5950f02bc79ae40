import { Problem } from '../problems.js'
import type { Sql } from '../db/connect.js'
import { eventColumns, eventTextColumns } from './event-columns.js'
import type { StoredEventText } from './read-log-text.js'
import { storageTenant, type StoredEvent } from './types.js'

export interface ReadStreamQuery {
  from?: number
  direction?: 'forward' | 'backward'
  limit?: number
  until?: string
}

export interface StreamPage {
  streamId: string
  version: number
  events: StoredEvent[]
  next: number | null
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
    ? sql`stream_version >= ${query.from ?? 1} and stream_version <= head.version order by stream_version asc`
    : sql`stream_version <= least(${query.from ?? null}::bigint, head.version) order by stream_version desc`
  const rows = await sql<(E & { head: number | null })[]>`
    with head as (${head})
    select head.version as head, page.*
      from head
      left join lateral (
        select ${columns}
          from events
         where tenant = ${owner}
           and stream_id = ${streamId}
           and ${range}
         limit ${limit + 1}
      ) as page on true
     where head.version is not null`
  const version = rows[0]?.head
  if (!version) throw new Problem('stream-not-found', { streamId }, `stream ${streamId} has no events`)
  const events = rows.filter((row) => row.globalPosition !== null).map(({ head: _, ...event }) => event as unknown as E)
  const next = events.length > limit ? events[limit]!.streamVersion : null
  return { streamId, version, events: events.slice(0, limit), next }
}
