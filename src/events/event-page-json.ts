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

// The rows of eventPage (the same events, limit and byte cut, in page order), each as its JSON. The splice is made
// once per row, in eventPage's outer query, which PostgreSQL does not flatten (it is ordered), and `special` is
// read from it; so the process receives three short columns and one run of bytes per event, never the stored text
// to decode, parse or re-encode (docs/performance.md "Stream reads"). `covered`: the types that have upcasters.
export const eventPageJson = (sql: Sql, where: postgres.Fragment, bounds: PageBounds, covered: readonly string[]) => sql`
  select key,
         json,
         type = any(${covered as string[]}::text[]) or strpos(json, chr(10)) > 0 or strpos(json, chr(13)) > 0 as special,
         following,
         "followingBytes",
         "pageBytes"
    from (${eventPage(sql, sql`${bounds.key} as key, type, ${eventJsonColumn(sql)} as json`, where, bounds)}) as page`

// A row of eventPageJson as postgres.js gives it in raw mode: every column as its text's bytes, or null.
export type EventJsonRow = (Buffer | null)[]

const int = (value: Buffer | null | undefined): number | null => (value == null ? null : Number(value.toString('latin1')))

// The page of raw rows (`offset`: how many columns come before eventPageJson's own) and what follows it.
export const takeJsonPage = (rows: readonly EventJsonRow[], offset = 0): TakenPage<EventJson> => {
  const present = rows.filter((row) => row[offset] != null)
  const events = present.map((row) => ({ key: int(row[offset])!, json: row[offset + 1]!, special: row[offset + 2]![0] === 0x74 }))
  const last = present.at(-1)
  return {
    events,
    count: events.length,
    following: last ? int(last[offset + 3]) : null,
    followingBytes: last ? int(last[offset + 4]) : null,
    bytes: last ? int(last[offset + 5])! : 0,
  }
}
