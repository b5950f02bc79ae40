import type postgres from 'postgres'
import type { Sql } from '../db/connect.js'
import { eventPage, type PageBounds, type TakenPage } from './event-page.js'

// Consecutive events of a page as the JSON the read returns, made by the database: `count` events, comma-separated,
// each spelled exactly as eventJsonFromText (event-json.ts) spells it. `special` runs hold one event that Node must
// look at: its type has upcasters, or its stored text has a line break (both rare). `json` is the bytes PostgreSQL
// sent, written to the socket without being decoded; `last` is the page key of the run's last event.
export interface EventRun {
  json: Buffer
  count: number
  last: number
  special: boolean
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

// The page of eventPage (the same rows, limit and byte cut) as runs, in page order, with the page's bookkeeping on
// each run: `following`, `following_bytes` and `page_bytes` as eventPage gives them for the run's last event. A run
// breaks at each special event. The splice is made once per row (eventPage's outer query is not flattened, being
// ordered) and `special` once (`offset 0`), so Node receives one row per run instead of one per event, and the
// stored text is never decoded, parsed or re-encoded in the process (docs/performance.md "Stream reads").
export const eventRuns = (sql: Sql, where: postgres.Fragment, bounds: PageBounds, covered: readonly string[]) => sql`
  select min(page_index) as first,
         count(*) as count,
         string_agg(json, ',' order by page_index) as json,
         (array_agg(key order by page_index desc))[1] as last,
         (array_agg(following order by page_index desc))[1] as following,
         (array_agg("followingBytes" order by page_index desc))[1] as following_bytes,
         max("pageBytes") as page_bytes,
         special
    from (
      select marked.*,
             count(*) filter (where special) over (order by page_index) as run
        from (
          select page.*,
                 page.type = any(${covered as string[]}::text[]) or strpos(json, chr(10)) > 0 or strpos(json, chr(13)) > 0 as special
            from (${eventPage(sql, sql`${bounds.key} as key, page_index, type, ${eventJsonColumn(sql)} as json`, where, bounds)}) as page
          offset 0
        ) as marked
    ) as runs
   group by run, special`

// The columns of eventRuns, in order, as postgres.js gives them in raw mode (text as bytes; null as null).
export type RunRow = (Buffer | null)[]

const int = (value: Buffer | null | undefined): number | null => (value == null ? null : Number(value.toString('latin1')))

// The runs of raw rows (`offset`: the columns before eventRuns' own), in page order, and what follows them.
export const takeRuns = (rows: readonly RunRow[], offset = 0): TakenPage<EventRun> => {
  const present = rows.filter((row) => row[offset + 1] !== null).sort((a, b) => int(a[offset])! - int(b[offset])!)
  const events = present.map((row) => ({
    json: row[offset + 2]!,
    count: int(row[offset + 1])!,
    last: int(row[offset + 3])!,
    special: row[offset + 7]![0] === 0x74,
  }))
  const last = present.at(-1)
  return {
    events,
    count: events.reduce((sum, run) => sum + run.count, 0),
    following: last ? int(last[offset + 4]) : null,
    followingBytes: last ? int(last[offset + 5]) : null,
    bytes: last ? int(last[offset + 6])! : 0,
  }
}
