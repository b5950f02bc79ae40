import type postgres from 'postgres'
import type { Sql } from '../db/connect.js'
import { personalColumn } from './event-columns.js'
import { eventPage, type PageBounds, type TakenPage } from './event-page.js'

// One event of a page as the JSON a read returns, made by the database: `json` spells it exactly as
// eventJsonFromText (event-json.ts) does, from the stored text, and holds the bytes PostgreSQL sent, to be written
// to the socket without being decoded. A `special` event is one Node must look at: its type has upcasters, or its
// stored text has a line break (both rare), or it names a subject: its personal part (`personal`, as
// event-columns.ts reads it) is opened in the process (SPEC "Personal data"). `key` is its page key.
export interface EventJson {
  json: Buffer
  special: boolean
  key: number
  personal?: string | null
}

// One event as JSON, as eventJsonFromText builds it: the columns of eventTextColumns (event-columns.ts) spliced.
const eventJsonColumn = (sql: Sql) => sql`concat(
  '{"globalPosition":', global_position,
  ',"streamId":"', stream_id,
  '","streamVersion":', stream_version,
  ',"eventId":"', event_id,
  '","type":"', type,
  '","data":', data::text,
  ',"metadata":', metadata::text,
  ',"createdAt":"', to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  '"}')`

// One read of a page: the version `head` selects (`select … as version`, which `where` may refer to as
// `(select version from head)`), and the events of eventPage (the same rows, limit and byte cut, in page order) as
// JSON. By default the database joins them into one row, comma-separated: the process receives the stored text as
// bytes it need not decode, parse or re-encode, plus a few short columns (docs/performance.md "Stream reads"); with
// `perRow`, one row per event. Each row: version; its JSON; whether it holds an event Node must see (`special`); and
// `{pageIndex, key, following, followingBytes, pageBytes}` of its (last) event, as eventPage gives them: the page
// index of the last event is the count so far. After the version, nulls when the page is empty; no row when `head`
// selects none. The joined row sorts its events once, for string_agg: `special` is bool_or and the last event's
// numbers are the greatest of these arrays, which their first element, the page index (unique, never null),
// orders, so neither needs a sort of its own.
export const eventPageJson = (sql: Sql, head: postgres.Fragment, where: postgres.Fragment, bounds: PageBounds, covered: readonly string[], perRow: boolean) => {
  const columns = sql`page_index, ${bounds.key} as key, (type = any(${covered as string[]}::text[]) or events.subject is not null) as special, ${eventJsonColumn(sql)} as json`
  const page = sql`(${eventPage(sql, perRow ? sql`${columns}, ${personalColumn(sql)}` : columns, where, bounds)}) as page`
  const tail = sql`array[page_index, key, following, "followingBytes", "pageBytes"]`
  const rows = perRow
    ? sql`select json, special, ${tail}, personal from ${page}`
    : sql`select string_agg(json, ',' order by page_index), bool_or(special), max(${tail}) from ${page}`
  return sql`
    with head as (${head})
    select head.version, rows.*
      from head
      left join lateral (${rows}) as rows on true
     where head.version is not null`
}

// A row of eventPageJson as postgres.js gives it in raw mode: every column as its text's bytes, or null.
export type EventJsonRow = (Buffer | null)[]

const int = (value: Buffer | null | undefined): number | null => (value == null ? null : Number(value.toString('latin1')))

// `{1,2,NULL}` → [1, 2, null]
const ints = (value: Buffer): (number | null)[] =>
  value.toString('latin1').replace(/[{}]/g, '').split(',').map((item) => (item === 'NULL' ? null : Number(item)))

// a boolean column in text: `t`
const isTrue = (value: Buffer | null | undefined): boolean => value?.[0] === 0x74

const LF = 10
const CR = 13
// Stored text with a line break (only JSON written to the database by hand has one) is re-encoded (event-json.ts).
const hasLineBreak = (json: Buffer): boolean => json.includes(LF) || json.includes(CR)

export interface JsonPageRead {
  // null: `head` selected none
  version: number | null
  // null: the joined row holds an event the process must see, so the read must be made again per row
  page: TakenPage<EventJson> | null
}

// The version of a read and its page, from eventPageJson's raw rows: one element per row, in page order.
export const takeJsonPage = (rows: readonly EventJsonRow[], perRow: boolean): JsonPageRead => {
  const version = rows.length ? int(rows[0]![0]) : null
  const present = rows.filter((row) => row[1] != null).map((row) => ({ row, tail: ints(row[3]!) }))
  if (!perRow && present.some(({ row }) => isTrue(row[2]) || hasLineBreak(row[1]!))) return { version, page: null }
  if (present.length > 1) present.sort((a, b) => a.tail[0]! - b.tail[0]!)
  const events = present.map(({ row, tail }) => {
    const json = row[1]!
    const personal = row[4] == null ? null : row[4].toString('utf8')
    return { key: tail[1]!, json, special: perRow && (isTrue(row[2]) || hasLineBreak(json)), personal }
  })
  const [count = 0, , following = null, followingBytes = null, bytes = 0] = present.at(-1)?.tail ?? []
  return { version, page: { events, count: count ?? 0, following, followingBytes, bytes: bytes ?? 0 } }
}
