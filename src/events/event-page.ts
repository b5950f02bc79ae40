import type postgres from 'postgres'
import type { Sql, Tx } from '../db/connect.js'

// SPEC "Details": MAX_PAGE_BYTES, the most event bytes one page or batch holds
export const DEFAULT_MAX_PAGE_BYTES = 16 * 1024 * 1024

type Fragment = postgres.Fragment

export interface PageBounds {
  // the page's order, e.g. sql`global_position`; `key` is the column that `following` reports
  order: Fragment
  key: Fragment
  limit: number
  maxBytes: number
}

// What eventPage adds to every row, taken off again by takePage.
export interface PageColumns {
  following: number | null
}

// The rows of `events` that match `where`, in `order`: at most `limit`, and only as many as fit in `maxBytes`
// of event_bytes (always the first one). The cut is made in the database from the stored sizes, so rows past
// it are never sent, nor even read from TOAST: `columns` (which may decode data, e.g. `data::text`) are
// computed in the outer query, for the rows kept only. `following` is the key of the row after each one
// (null at the end of what matches), so a caller knows whether the page stopped early and where the next
// one starts.
export const eventPage = <E>(sql: Sql | Tx, columns: Fragment, where: Fragment, { order, key, limit, maxBytes }: PageBounds) => sql<(E & PageColumns)[]>`
  select ${columns},
         following
    from (
      select events.*,
             row_number() over page as page_index,
             sum(event_bytes) over page as page_bytes,
             lead(${key}) over page as following
        from events
       where ${where}
      window page as (order by ${order} rows unbounded preceding)
       order by ${order}
       limit ${limit}
    ) as events
   where page_index = 1
      or page_bytes <= ${maxBytes}
   order by ${order}`

// The page's events, without the paging column, and the key of the first matching row after them (null: none).
export const takePage = <E>(rows: readonly (E & PageColumns)[]): { events: E[]; following: number | null } => {
  const events = rows.map(({ following: _, ...event }) => event as unknown as E)
  return { events, following: rows.at(-1)?.following ?? null }
}
