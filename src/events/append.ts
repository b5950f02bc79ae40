import { Problem } from '../problems.js'
import type { Sql } from '../db/connect.js'
import type { AppendRequest, AppendResult, ExpectedVersion, InputEvent } from './schemas.js'
import { storageTenant } from './types.js'
import { signalAppended } from './appended.js'
import { appendRequestAlone, type AppendRow, type PendingAppend } from './append-call.js'
import { appendBatched } from './append-batcher.js'
import type { Keyring } from './keyring.js'
import { envelopeText, sealPersonalParts, unambiguousMetadata, type PersonalPart } from './personal-envelope.js'

export interface AppendEvent extends InputEvent {
  // data and metadata as the client sent them (json-body.ts): stored instead of re-encoding the values
  json?: { data?: string; metadata?: string } | undefined
}

// An AppendRequest whose events may carry their sent text.
export type AppendInput = Omit<AppendRequest, 'events'> & { events: AppendEvent[] }

export const appendEvents = async (
  sql: Sql,
  tenant: string,
  streamId: string,
  request: AppendInput,
  // SPEC "Personal data": seals personalData before the append call
  keyring?: Keyring,
): Promise<AppendResult> => {
  const personal = namesSubject(request) ? await sealRequest(sql, keyring, storageTenant(tenant, streamId), request) : undefined
  const [row] = await appendRequest(sql, [pendingAppend(tenant, streamId, request, personal)])
  return toResult(row!, streamId, request.expectedVersion ?? 'any')
}

// Only a request naming a subject waits for sealing: the others reach the batcher in the order they were made.
export const namesSubject = (request: AppendInput): boolean =>
  request.events.some((event) => event.subject !== undefined || event.personalData !== undefined)

export type SealedParts = (PersonalPart | undefined)[]

// personalData is not in the stored text (it is sealed), so it is walked whenever an event carries it
export const sealRequest = async (sql: Sql, keyring: Keyring | undefined, owner: string, request: AppendInput): Promise<SealedParts | undefined> => {
  if (request.events.some((event) => event.personalData !== undefined && holdsUnstorable(event.personalData))) throw unstorable()
  return sealPersonalParts(sql, keyring, owner, request.events)
}

// One append as the database functions take it (append-call.ts), with its events' sealed personal parts.
export const pendingAppend = (tenant: string, streamId: string, request: AppendInput, personal?: SealedParts): PendingAppend => {
  const expected = request.expectedVersion ?? 'any'
  const events = eventsText(request.events, personal)
  if (UNSTORABLE_ESCAPE.test(events) && holdsUnstorable(request.events)) throw unstorable()
  return {
    tenant: storageTenant(tenant, streamId),
    streamId,
    kind: typeof expected === 'number' ? 'version' : expected,
    version: typeof expected === 'number' ? expected : null,
    count: request.events.length,
    eventIds: request.events.flatMap((event) => (event.eventId === undefined ? [] : [event.eventId.toLowerCase()])),
    events,
  }
}

// One request, written whole or not at all: a row per append, in its order.
export const appendRequest = (sql: Sql, request: PendingAppend[]): Promise<AppendRow[]> =>
  isPool(sql) ? appendBatched(sql, request) : appendInTransaction(sql, request)

// Only the pool batches: a transaction's (or a reserved connection's) handle has no begin, and an append made
// through it must be part of that transaction. Its commit is the caller's, so it signals nothing that counts.
const isPool = (sql: Sql): boolean => typeof (sql as { begin?: unknown }).begin === 'function'

const appendInTransaction = async (sql: Sql, request: PendingAppend[]): Promise<AppendRow[]> => {
  const rows = await appendRequestAlone(sql, request)
  if (rows.some((row) => row.outcome === 'appended')) signalAppended(sql)
  return rows
}

// SPEC "Details": data and metadata are stored as sent, every number's digits and every key kept; only
// values built in the process (system events) are encoded here.
const eventsText = (events: AppendEvent[], personal: (PersonalPart | undefined)[] | undefined): string =>
  `[${events.map((event, index) => eventText(event, personal?.[index])).join(',')}]`

const eventText = ({ eventId, type, data, metadata, json }: AppendEvent, personal: PersonalPart | undefined): string => {
  const dataText = json?.data ?? JSON.stringify(data)
  const sentMetadata = json?.metadata ?? (metadata === undefined ? undefined : JSON.stringify(metadata))
  const metadataText = personal ? envelopeText(personal, sentMetadata) : sentMetadata === undefined ? undefined : unambiguousMetadata(sentMetadata)
  return `{${eventId === undefined ? '' : `"eventId":${JSON.stringify(eventId)},`}"type":${JSON.stringify(type)},"data":${dataText}${metadataText === undefined ? '' : `,"metadata":${metadataText}`}}`
}

const toResult = (row: AppendRow, streamId: string, expectedVersion: ExpectedVersion): AppendResult => {
  if (row.outcome === 'wrong-expected-version') {
    throw new Problem(
      'wrong-expected-version',
      { expectedVersion, currentVersion: row.currentVersion },
      `stream ${streamId} is at version ${row.currentVersion}, expected ${expectedVersion}`,
    )
  }
  if (row.outcome === 'duplicate-event-id') throw duplicateEventId('this exact run of this stream')
  const result: AppendResult = {
    streamId,
    firstVersion: row.firstVersion,
    lastVersion: row.lastVersion,
    firstPosition: row.firstPosition,
    lastPosition: row.lastPosition,
  }
  return row.outcome === 'duplicate' ? { ...result, duplicate: true } : result
}

export const duplicateEventId = (run: string): Problem =>
  new Problem('duplicate-event-id', {}, `some event ids of this request are already stored, but not as ${run}`)

// Documents are jsonb, which cannot hold \u0000 or an unpaired surrogate: an event carrying one could
// never be projected. Walked only when the serialised text shows such an escape, so ordinary appends pay nothing.
const UNSTORABLE_ESCAPE = /\\u(0000|d[89a-f])/i

const unstorable = (): Problem =>
  new Problem('validation-failed', {}, 'event data, metadata and personalData may not contain \\u0000 or unpaired surrogates')

const unstorableText = (text: string): boolean => text.includes('\u0000') || !text.isWellFormed()

const holdsUnstorable = (value: unknown): boolean => {
  if (typeof value === 'string') return unstorableText(value)
  if (Array.isArray(value)) return value.some(holdsUnstorable)
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).some(([key, item]) => unstorableText(key) || holdsUnstorable(item))
  }
  return false
}
