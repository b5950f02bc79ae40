import type postgres from 'postgres'
import type { Sql, Tx } from '../db/connect.js'

// SPEC "Details": MAX_PAGE_BYTES, the most event bytes one page or batch holds
export const DEFAULT_MAX_PAGE_BYTES = 16 * 1024 * 1024

// One read of events for a response takes at most this many bytes of them (or MAX_PAGE_BYTES when that is less),
// always one event: a page, a replay or a load is read and written a chunk at a time, the next read only once the
// socket took the last chunk, so a reader costs one chunk of memory however large its page (SPEC "Details": slow
// clients cost bounded memory). Projection and backfill batches are not responses and read MAX_PAGE_BYTES at once.
const READ_CHUNK_BYTES = 1024 * 1024

export const readChunkBytes = (maxPageBytes: number): number => Math.min(maxPageBytes, READ_CHUNK_BYTES)

type Fragment = postgres.Fragment

export interface PageBounds {
  // the page's order, e.g. sql`global_position`; `key` is the column that `following` reports
  order: Fragment
  key: Fragment
  limit: number
  maxBytes: number
}

// What eventPage adds to every row, taken off again by takePage.
export interface PageColumns<K = number> {
  following: K | null
  followingBytes: number | null
  pageBytes: number
}

// The rows of `events` that match `where`, in `order`: at most `limit`, and only as many as fit in `maxBytes`
// of event_bytes (always the first one). The cut is made in the database from the stored sizes, so rows past
// it are never sent, nor even read from TOAST: `columns` (which may decode data, e.g. `data::text`) are
// computed in the outer query, for the rows kept only. `following` is the key of the row after each one
// (null at the end of what matches) and `followingBytes` its size, so a caller knows whether the page stopped
// early, where the next one starts and whether that row would fit in what is left of a budget.
export const eventPage = <E>(sql: Sql | Tx, columns: Fragment, where: Fragment, { order, key, limit, maxBytes }: PageBounds) => sql<(E & PageColumns)[]>`
  select ${columns},
         following,
         following_bytes as "followingBytes",
         page_bytes as "pageBytes"
    from (
      select events.*,
             row_number() over page as page_index,
             sum(event_bytes) over page as page_bytes,
             lead(${key}) over page as following,
             lead(event_bytes) over page as following_bytes
        from events
       where ${where}
      window page as (order by ${order} rows unbounded preceding)
       order by ${order}
       limit ${limit}
    ) as events
   where page_index = 1
      or page_bytes <= ${maxBytes}
   order by ${order}`

export interface TakenPage<E, K = number> {
  events: E[]
  // how many events `events` holds (an element may stand for several: event-runs.ts)
  count: number
  // the key of the first matching row after the events (null: none) and its size
  following: K | null
  followingBytes: number | null
  // the size of the events
  bytes: number
}

// The page's events, without the paging columns, and what follows them.
export const takePage = <E, K = number>(rows: readonly (E & PageColumns<K>)[]): TakenPage<E, K> => {
  const events = rows.map(({ following: _, followingBytes: __, pageBytes: ___, ...event }) => event as unknown as E)
  const last = rows.at(-1)
  return { events, count: events.length, following: last?.following ?? null, followingBytes: last?.followingBytes ?? null, bytes: last?.pageBytes ?? 0 }
}
