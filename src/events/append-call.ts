import { setTimeout as sleep } from 'node:timers/promises'
import type { Sql } from '../db/connect.js'
import { isRetryableConflict, isUniqueViolation, toProblem } from '../db/pg-errors.js'

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
  // not-written: another append of its request failed its expectation, so the request wrote nothing
  outcome: 'appended' | 'duplicate' | 'duplicate-event-id' | 'wrong-expected-version' | 'not-written'
  currentVersion: number | null
  firstVersion: number
  lastVersion: number
  firstPosition: number
  lastPosition: number
}

// One append in a transaction of its own (or in the caller's), with the second looks that races need.
export const appendAlone = (sql: Sql, append: PendingAppend): Promise<AppendRow> =>
  withSecondLooks(() => callAppend(sql, append), (row) => row.outcome === 'wrong-expected-version', append.eventIds.length > 0)

// One request (an append, or the appends of POST /appends) in a transaction of its own, likewise.
export const appendRequestAlone = async (sql: Sql, request: PendingAppend[]): Promise<AppendRow[]> => {
  if (request.length === 1) return [await appendAlone(sql, request[0]!)]
  return withSecondLooks(
    async () => (await appendBatch(sql, [request]))[0]!,
    (rows) => rows.some((row) => row.outcome === 'wrong-expected-version'),
    request.some((append) => append.eventIds.length > 0),
  )
}

const withSecondLooks = async <T>(call: () => Promise<T>, conflicted: (answer: T) => boolean, carriesIds: boolean): Promise<T> => {
  let answer = await lookAgainOnRace(call)
  if (carriesIds && conflicted(answer)) {
    // The racer that beat us may have been this very request sent twice: its events were not yet
    // committed when we checked ids, so look once more before calling it a conflict.
    answer = await lookAgainOnRace(call)
  }
  return answer
}

// A racer committed the same event ids first: the unique index waited for it, so a second look now sees its
// events and answers as an idempotent retry (or a misplaced duplicate) would. A deadlock (two requests inserting
// each other's event ids in opposite orders) rolled back one of them, or both; the next look may still find the
// survivor uncommitted and meet the unique index, so it takes a few looks, the ones after a deadlock a moment apart
// so that the two do not meet again.
const MAX_LOOKS = 6

const lookAgainOnRace = async <T>(call: () => Promise<T>): Promise<T> => {
  for (let look = 1; ; look++) {
    try {
      return await call()
    } catch (error) {
      const deadlocked = isRetryableConflict(error)
      if (!(deadlocked || isUniqueViolation(error, 'events_event_id_key')) || look === MAX_LOOKS) throw toProblem(error) ?? error
      if (deadlocked) await sleep(Math.random() * 20)
    }
  }
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

// Many requests in one statement, so one transaction and one commit; rows per request, a row per append, in
// their order. A request is written whole or not at all.
export const appendBatch = async (sql: Sql, requests: PendingAppend[][]): Promise<AppendRow[][]> => {
  const appends = requests.flat()
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
             ${requests.flatMap((request, index) => request.map(() => index + 1))}::int[],
             ${appends.map((append) => append.kind)}::text[],
             ${appends.map((append) => append.version)}::bigint[],
             ${appends.map((append) => append.count)}::int[],
             ${appends.map((append) => append.eventIds.length)}::int[],
             ${`[${appends.map((append) => append.events).join(',')}]`}::text::json)`
  if (rows.length !== appends.length) throw new Error(`append_events_batch returned ${rows.length} rows for ${appends.length} appends`)
  const answered = [...rows]
  let next = 0
  return requests.map((request) => answered.slice(next, (next += request.length)))
}
