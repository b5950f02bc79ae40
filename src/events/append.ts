import { Problem } from '../problems.js'
import type { Sql } from '../db/connect.js'
import { isUniqueViolation, toProblem } from '../db/pg-errors.js'
import type { AppendRequest, AppendResult, ExpectedVersion, InputEvent } from './schemas.js'
import { storageTenant } from './types.js'
import { signalAppended } from './appended.js'

export interface AppendEvent extends InputEvent {
  // data and metadata as the client sent them (json-body.ts): stored instead of re-encoding the values
  json?: { data?: string; metadata?: string } | undefined
}

// An AppendRequest whose events may carry their sent text.
export type AppendInput = Omit<AppendRequest, 'events'> & { events: AppendEvent[] }

interface AppendRow {
  outcome: 'appended' | 'duplicate' | 'duplicate-event-id' | 'wrong-expected-version'
  currentVersion: number | null
  firstVersion: number
  lastVersion: number
  firstPosition: number
  lastPosition: number
}

export const appendEvents = async (
  sql: Sql,
  tenant: string,
  streamId: string,
  request: AppendInput,
): Promise<AppendResult> => {
  const expected = request.expectedVersion ?? 'any'
  const kind = typeof expected === 'number' ? 'version' : expected
  const version = typeof expected === 'number' ? expected : null
  const events = eventsText(request.events)
  if (UNSTORABLE_ESCAPE.test(events) && holdsUnstorable(request.events)) {
    throw new Problem('validation-failed', {}, 'event data and metadata may not contain \\u0000 or unpaired surrogates')
  }
  const owner = storageTenant(tenant, streamId)
  let row: AppendRow
  try {
    row = await callAppend(sql, owner, streamId, kind, version, events)
  } catch (error) {
    // A racer committed the same event ids first: the unique index waited for it, so a second look
    // now sees its events and answers as an idempotent retry (or a misplaced duplicate) would.
    if (!isUniqueViolation(error, 'events_event_id_key')) throw toProblem(error) ?? error
    row = await callAppend(sql, owner, streamId, kind, version, events)
  }
  if (row.outcome === 'wrong-expected-version' && request.events.some((event) => event.eventId)) {
    // The racer that beat us may have been this very request sent twice: its events were not yet
    // committed when we checked ids, so look once more before calling it a conflict.
    row = await callAppend(sql, owner, streamId, kind, version, events)
  }
  if (row.outcome === 'appended') signalAppended(sql)
  return toResult(row, streamId, expected)
}

// SPEC "Details": data and metadata are stored as sent, every number's digits and every key kept; only
// values built in the process (system events) are encoded here.
const eventsText = (events: AppendEvent[]): string => `[${events.map(eventText).join(',')}]`

const eventText = ({ eventId, type, data, metadata, json }: AppendEvent): string => {
  const dataText = json?.data ?? JSON.stringify(data)
  const metadataText = json?.metadata ?? (metadata === undefined ? undefined : JSON.stringify(metadata))
  return `{${eventId === undefined ? '' : `"eventId":${JSON.stringify(eventId)},`}"type":${JSON.stringify(type)},"data":${dataText}${metadataText === undefined ? '' : `,"metadata":${metadataText}`}}`
}

const callAppend = async (
  sql: Sql,
  tenant: string,
  streamId: string,
  kind: string,
  version: number | null,
  events: string,
): Promise<AppendRow> => {
  const [row] = await sql<AppendRow[]>`
    select outcome,
           current_version as "currentVersion",
           first_version as "firstVersion",
           last_version as "lastVersion",
           first_position as "firstPosition",
           last_position as "lastPosition"
      from append_events(${tenant}, ${streamId}, ${kind}, ${version}, ${events}::text::json)`
  if (!row) throw new Error('append_events returned no row')
  return row
}

const toResult = (row: AppendRow, streamId: string, expectedVersion: ExpectedVersion): AppendResult => {
  if (row.outcome === 'wrong-expected-version') {
    throw new Problem(
      'wrong-expected-version',
      { expectedVersion, currentVersion: row.currentVersion },
      `stream ${streamId} is at version ${row.currentVersion}, expected ${expectedVersion}`,
    )
  }
  if (row.outcome === 'duplicate-event-id') {
    throw new Problem('duplicate-event-id', {}, 'some event ids of this request are already stored, but not as this exact run of this stream')
  }
  const result: AppendResult = {
    streamId,
    firstVersion: row.firstVersion,
    lastVersion: row.lastVersion,
    firstPosition: row.firstPosition,
    lastPosition: row.lastPosition,
  }
  return row.outcome === 'duplicate' ? { ...result, duplicate: true } : result
}

// Documents are jsonb, which cannot hold \u0000 or an unpaired surrogate: an event carrying one could
// never be projected. Walked only when the serialised text shows such an escape, so ordinary appends pay nothing.
const UNSTORABLE_ESCAPE = /\\u(0000|d[89a-f])/i

const unstorable = (text: string): boolean => text.includes('\u0000') || !text.isWellFormed()

const holdsUnstorable = (value: unknown): boolean => {
  if (typeof value === 'string') return unstorable(value)
  if (Array.isArray(value)) return value.some(holdsUnstorable)
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).some(([key, item]) => unstorable(key) || holdsUnstorable(item))
  }
  return false
}
