import { Problem } from '../problems.js'
import type { Sql } from '../db/connect.js'
import type { AppendsResult, ExpectedVersion, StreamAppendResult } from './schemas.js'
import { appendRequest, duplicateEventId, namesSubject, pendingAppend, sealRequest, type AppendInput, type SealedParts } from './append.js'
import type { AppendRow } from './append-call.js'
import { storageTenant } from './types.js'
import type { Keyring } from './keyring.js'

export type StreamAppendInput = AppendInput & { streamId: string }

export interface AppendsInput {
  appends: StreamAppendInput[]
}

export interface Conflict {
  streamId: string
  expectedVersion: ExpectedVersion
  currentVersion: number
}

// SPEC "Append to several streams at once": every entry in one transaction, or none. It travels the batched
// write path as one request (append-batcher.ts), so it shares a batch with other appends and keeps the
// canonical lock order of append_events_batch() (sql/0018).
// Each entry's personalData is sealed as a single append's is (SPEC "Personal data"), one entry after another.
export const appendToStreams = async (sql: Sql, tenant: string, { appends }: AppendsInput, keyring?: Keyring): Promise<AppendsResult> => {
  refuseRepeats(appends)
  const personal = appends.some(namesSubject) ? await sealEntries(sql, keyring, tenant, appends) : []
  const rows = await appendRequest(sql, appends.map((entry, index) => pendingAppend(tenant, entry.streamId, entry, personal[index])))
  return toResult(rows, appends)
}

// A stream twice, or an event id twice, would make one entry depend on another's writes: SPEC says 400.
const refuseRepeats = (appends: StreamAppendInput[]): void => {
  const streams = appends.map((entry) => entry.streamId)
  if (new Set(streams).size !== streams.length) {
    throw new Problem('validation-failed', {}, 'a stream may appear at most once in one request')
  }
  const ids = appends.flatMap((entry) => entry.events.flatMap((event) => (event.eventId === undefined ? [] : [event.eventId.toLowerCase()])))
  if (new Set(ids).size !== ids.length) throw new Problem('validation-failed', {}, 'the same eventId appears twice in this request')
}

const sealEntries = async (sql: Sql, keyring: Keyring | undefined, tenant: string, appends: StreamAppendInput[]): Promise<(SealedParts | undefined)[]> => {
  const sealed: (SealedParts | undefined)[] = []
  for (const entry of appends) sealed.push(await sealRequest(sql, keyring, storageTenant(tenant, entry.streamId), entry))
  return sealed
}

const toResult = (rows: AppendRow[], appends: StreamAppendInput[]): AppendsResult => {
  if (rows.some((row) => row.outcome === 'duplicate-event-id')) throw duplicateEventId('the same runs of the same streams, in this order')
  const conflicts: Conflict[] = rows.flatMap((row, index) =>
    row.outcome === 'wrong-expected-version'
      ? [{ streamId: appends[index]!.streamId, expectedVersion: appends[index]!.expectedVersion ?? 'any', currentVersion: row.currentVersion ?? 0 }]
      : [],
  )
  if (conflicts.length > 0) {
    const named = conflicts.map(({ streamId, expectedVersion, currentVersion }) => `${streamId} is at version ${currentVersion}, expected ${expectedVersion}`)
    throw new Problem('wrong-expected-version', { conflicts }, `nothing was written: ${named.join('; ')}`)
  }
  if (rows.some((row) => row.outcome !== 'appended' && row.outcome !== 'duplicate')) throw new Error('append_events_batch split a request')
  const results: StreamAppendResult[] = rows.map((row, index) => ({
    streamId: appends[index]!.streamId,
    firstVersion: row.firstVersion,
    lastVersion: row.lastVersion,
    firstPosition: row.firstPosition,
    lastPosition: row.lastPosition,
  }))
  return rows.every((row) => row.outcome === 'duplicate') ? { appends: results, duplicate: true } : { appends: results }
}
