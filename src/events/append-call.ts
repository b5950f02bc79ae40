import type { Sql } from '../db/connect.js'
import { isUniqueViolation, toProblem } from '../db/pg-errors.js'

// One append as the database functions take it: the storage tenant, the expectation split into kind and
// version, and the events as one JSON array text.
export interface PendingAppend {
  tenant: string
  streamId: string
  kind: 'version' | 'no_stream' | 'exists' | 'any'
  version: number | null
  // how many events, and the ids the caller gave them (lower case; none when it gave none)
  count: number
  eventIds: string[]
  events: string
}

export interface AppendRow {
  outcome: 'appended' | 'duplicate' | 'duplicate-event-id' | 'wrong-expected-version'
  currentVersion: number | null
  firstVersion: number
  lastVersion: number
  firstPosition: number
  lastPosition: number
}

// One append in a transaction of its own (or in the caller's), with the second looks that races need.
export const appendAlone = async (sql: Sql, append: PendingAppend): Promise<AppendRow> => {
  let row: AppendRow
  try {
    row = await callAppend(sql, append)
  } catch (error) {
    // A racer committed the same event ids first: the unique index waited for it, so a second look
    // now sees its events and answers as an idempotent retry (or a misplaced duplicate) would.
    if (!isUniqueViolation(error, 'events_event_id_key')) throw toProblem(error) ?? error
    row = await callAppend(sql, append)
  }
  if (row.outcome === 'wrong-expected-version' && append.eventIds.length > 0) {
    // The racer that beat us may have been this very request sent twice: its events were not yet
    // committed when we checked ids, so look once more before calling it a conflict.
    row = await callAppend(sql, append)
  }
  return row
}

// append_events() and append_events_batch() answer with the same row
const appendRowColumns = (sql: Sql) => sql`
  outcome,
  current_version as "currentVersion",
  first_version as "firstVersion",
  last_version as "lastVersion",
  first_position as "firstPosition",
  last_position as "lastPosition"`

const callAppend = async (sql: Sql, { tenant, streamId, kind, version, events }: PendingAppend): Promise<AppendRow> => {
  const [row] = await sql<AppendRow[]>`
    select ${appendRowColumns(sql)}
      from append_events(${tenant}, ${streamId}, ${kind}, ${version}, ${events}::text::json)`
  if (!row) throw new Error('append_events returned no row')
  return row
}

// Many appends in one statement, so one transaction and one commit; a row per append, in their order.
export const appendBatch = async (sql: Sql, appends: PendingAppend[]): Promise<AppendRow[]> => {
  const streams = new Map<string, { tenant: string; streamId: string; index: number }>()
  const indexes = appends.map(({ tenant, streamId }) => {
    const key = JSON.stringify([tenant, streamId])
    let stream = streams.get(key)
    if (!stream) {
      stream = { tenant, streamId, index: streams.size + 1 }
      streams.set(key, stream)
    }
    return stream.index
  })
  const rows = await sql<AppendRow[]>`
    select ${appendRowColumns(sql)}
      from append_events_batch(
             ${[...streams.values()].map((stream) => stream.tenant)}::text[],
             ${[...streams.values()].map((stream) => stream.streamId)}::text[],
             ${indexes}::int[],
             ${appends.map((append) => append.kind)}::text[],
             ${appends.map((append) => append.version)}::bigint[],
             ${appends.map((append) => append.count)}::int[],
             ${appends.map((append) => append.eventIds.length)}::int[],
             ${`[${appends.map((append) => append.events).join(',')}]`}::text::json)`
  if (rows.length !== appends.length) throw new Error(`append_events_batch returned ${rows.length} rows for ${appends.length} appends`)
  return [...rows]
}
