import { streamNotFound } from '../problems.js'
import type { Sql } from '../db/connect.js'
import { ChunkedPage } from './chunked-page.js'
import { eventColumns } from './event-columns.js'
import { eventPageJson, takeJsonPage, type EventJson, type EventJsonRow } from './event-page-json.js'
import { DEFAULT_MAX_PAGE_BYTES, eventPage, takePage, type PageBounds, type PageColumns, type TakenPage } from './event-page.js'
import type { StoredEvent, StreamPage, StreamReadQuery } from './schemas.js'
import { storageTenant } from './types.js'

export interface ReadStreamQuery extends StreamReadQuery {
  // MAX_PAGE_BYTES: the page stops early once it holds this many bytes of events (always at least one)
  maxBytes?: number
}

// A stream page read as chunks (chunked-page.ts) of events as JSON (event-page-json.ts); its `next` is `page.following`.
export interface ChunkedStreamPage {
  streamId: string
  version: number
  page: ChunkedPage<EventJson>
}

type Versioned = { globalPosition: number; streamVersion: number }

export const readStream = async (sql: Sql, tenant: string, streamId: string, query: ReadStreamQuery): Promise<StreamPage> => {
  const { version, page } = await readFirst<StoredEvent>(sql, tenant, streamId, query, eventColumns(sql))
  return { streamId, version, events: page.events, next: page.following }
}

// `following` is the version after the page's last event in the page's direction: where the next page starts.
const streamBounds = (sql: Sql, forward: boolean, limit: number, maxBytes: number): PageBounds => ({
  order: forward ? sql`stream_version asc` : sql`stream_version desc`,
  key: sql`stream_version`,
  limit,
  maxBytes,
})

// The page as JSON made by the database (event-page-json.ts; `covered`: the types that have upcasters), for the HTTP
// read, read as chunks of at most `chunkBytes`. Every chunk after the first stays within the version the first one
// found, so appends made meanwhile are not part of the page, as they would not be of a page read at once.
export const readStreamChunks = async (
  sql: Sql,
  tenant: string,
  streamId: string,
  query: ReadStreamQuery,
  chunkBytes: number,
  covered: readonly string[] = [],
): Promise<ChunkedStreamPage> => {
  const owner = storageTenant(tenant, streamId)
  const forward = query.direction !== 'backward'
  let version = 0
  const read = async (after: number | undefined, limit: number, maxBytes: number, perRow = false): Promise<TakenPage<EventJson>> => {
    const { head, where } = after === undefined
      ? firstRange(sql, owner, streamId, { ...query, limit, maxBytes })
      : { head: sql`select ${version}::int8 as version`, where: sql`tenant = ${owner} and stream_id = ${streamId} and ${forward ? sql`stream_version > ${after} and stream_version <= ${version}` : sql`stream_version < ${after}`}` }
    const rows = (await eventPageJson(sql, head, where, streamBounds(sql, forward, limit, maxBytes), covered, perRow).raw()) as unknown as EventJsonRow[]
    const { version: found, page } = takeJsonPage(rows, perRow)
    if (!found) throw streamNotFound(streamId)
    // the first read fixed the version, so the same read per row finds the same events
    version = found
    return page ?? read(after, limit, maxBytes, true)
  }
  const bounds = { limit: query.limit ?? 100, maxBytes: query.maxBytes ?? DEFAULT_MAX_PAGE_BYTES, chunkBytes }
  const page = await ChunkedPage.open(read, (event: EventJson) => event.key, bounds)
  return { streamId, version, page }
}

// The stream's version (at `until`, when given) and the condition of its page from `from`, which refers to it.
const firstRange = (sql: Sql, owner: string, streamId: string, query: ReadStreamQuery) => {
  const forward = query.direction !== 'backward'
  // with `until`, the head is the last version written by then: the stream as it was at that time
  const head = query.until
    ? sql`select max(stream_version) as version from events where tenant = ${owner} and stream_id = ${streamId} and created_at <= ${query.until}`
    : sql`select version from streams where tenant = ${owner} and stream_id = ${streamId}`
  const range = forward
    ? sql`stream_version >= ${query.from ?? 1} and stream_version <= (select version from head)`
    : sql`stream_version <= least(${query.from ?? null}::bigint, (select version from head))`
  return { head, where: sql`tenant = ${owner} and stream_id = ${streamId} and ${range}` }
}

// The stream's version (at `until`, when given) and the page from `from`, in one statement.
const readFirst = async <E extends Versioned>(
  sql: Sql,
  tenant: string,
  streamId: string,
  query: ReadStreamQuery,
  columns: ReturnType<typeof eventColumns>,
): Promise<{ version: number; page: TakenPage<E> }> => {
  const { head, where } = firstRange(sql, storageTenant(tenant, streamId), streamId, query)
  const bounds = streamBounds(sql, query.direction !== 'backward', query.limit ?? 100, query.maxBytes ?? DEFAULT_MAX_PAGE_BYTES)
  const page = eventPage<E>(sql, columns, where, bounds)
  const rows = await sql<(E & PageColumns & { head: number | null })[]>`
    with head as (${head})
    select head.version as head, page.*
      from head
      left join lateral (${page}) as page on true
     where head.version is not null`
  const version = rows[0]?.head
  if (!version) throw streamNotFound(streamId)
  return { version, page: takePage(rows.filter((row) => row.globalPosition !== null).map(({ head: _, ...row }) => row as unknown as E & PageColumns)) }
}
