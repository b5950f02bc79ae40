import type postgres from 'postgres'
import type { Sql } from '../db/connect.js'
import { eventPage, type PageBounds, type TakenPage } from './event-page.js'

// One event of a page as the JSON a read returns, made by the database: `json` spells it exactly as
// eventJsonFromText (event-json.ts) does, from the stored text, and holds the bytes PostgreSQL sent, to be written
// to the socket without being decoded. A `special` event is one Node must look at: its type has upcasters, or its
// stored text has a line break (both rare). `key` is its page key (stream version or global position).
export interface EventJson {
  json: Buffer
  special: boolean
  key: number
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
// `(select version from head)`), and the rows of eventPage (the same events, limit and byte cut), as JSON. When no
// event of the read is special (the usual case), the database joins them into one row, comma-separated, keyed as the
// last; otherwise it sends one row per event. Either way the process receives the stored text as bytes it need not
// decode, parse or re-encode, and a few short columns (docs/performance.md "Stream reads"). The splice and `special`
// are made once per row (the page is materialized). `covered`: the types that have upcasters. Each row:
// version, then page_index (of the row's last event: the count so far), key, json, special, following,
// followingBytes, pageBytes (as eventPage gives them for that event); one row of nulls after the version when the
// page is empty, and no row when `head` selects none.
export const eventPageJson = (sql: Sql, head: postgres.Fragment, where: postgres.Fragment, bounds: PageBounds, covered: readonly string[]) => sql`
  with head as (${head}),
       page as materialized (
         select page_index,
                key,
                json,
                type = any(${covered as string[]}::text[]) or strpos(json, chr(10)) > 0 or strpos(json, chr(13)) > 0 as special,
                following,
                "followingBytes",
                "pageBytes"
           from (${eventPage(sql, sql`page_index, ${bounds.key} as key, type, ${eventJsonColumn(sql)} as json`, where, bounds)}) as page
       ),
       summary as (
         select coalesce(bool_or(special), false) as mixed,
                max(page_index) as last
           from page
       )
  select head.version, rows.*
    from head
    left join (
      select page.*
        from page, summary
       where summary.mixed
      union all
      select page.page_index, page.key, array_to_string(array(select json from page order by page_index), ','), false,
             page.following, page."followingBytes", page."pageBytes"
        from page
        join summary on page.page_index = summary.last
       where not summary.mixed
    ) as rows on true
   where head.version is not null`

// A row of eventPageJson as postgres.js gives it in raw mode: every column as its text's bytes, or null.
export type EventJsonRow = (Buffer | null)[]

const int = (value: Buffer | null | undefined): number | null => (value == null ? null : Number(value.toString('latin1')))

// The version of a read (null: `head` selected none) and its page: one element per row, in page order.
export const takeJsonPage = (rows: readonly EventJsonRow[]): { version: number | null; page: TakenPage<EventJson> } => {
  const present = rows.filter((row) => row[1] != null)
  if (present.length > 1) present.sort((a, b) => int(a[1])! - int(b[1])!)
  const events = present.map((row) => ({ key: int(row[2])!, json: row[3]!, special: row[4]![0] === 0x74 }))
  const last = present.at(-1)
  const page = {
    events,
    count: last ? int(last[1])! : 0,
    following: last ? int(last[5]) : null,
    followingBytes: last ? int(last[6]) : null,
    bytes: last ? int(last[7])! : 0,
  }
  return { version: rows.length ? int(rows[0]![0]) : null, page }
}
