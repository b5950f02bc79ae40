import type { Sql } from '../db/connect.js'
import { appendEvents } from '../events/append.js'
import { SYSTEM_TENANT } from '../events/types.js'

export type SystemEventType =
  | 'ProjectionStarted'
  | 'ProjectionStopped'
  | 'ProjectionFailed'
  | 'ProjectionSkippedEvent'
  | 'ProjectionBackfillRequested'
  | 'ProjectionBackfillStarted'
  | 'ProjectionBackfillProgress'
  | 'ProjectionBackfillCompleted'
  | 'ProjectionBackfillFailed'
  | 'ProjectionBackfillCancelled'
  | 'ProjectionSwapped'
  | 'ProjectionRolledBack'
  | 'ProjectionSnapshotCreated'
  | 'ProjectionSnapshotRestored'

// The server records its own lifecycle as ordinary events in `$projection-{name}` (SPEC "System
// events"); a run started by a request event carries that request's correlationId on its events.
export const recordSystemEvent = async (
  sql: Sql,
  name: string,
  type: SystemEventType,
  data: Record<string, unknown> = {},
  correlationId?: string | null,
): Promise<void> => {
  await appendSystemEvent(sql, `$projection-${name}`, type, { projection: name, ...data }, correlationId)
}

export const appendSystemEvent = async (
  sql: Sql,
  streamId: string,
  type: SystemEventType,
  data: Record<string, unknown>,
  correlationId?: string | null,
): Promise<void> => {
  const metadata = correlationId ? { metadata: { correlationId } } : {}
  await appendEvents(sql, SYSTEM_TENANT, streamId, { events: [{ type, data, ...metadata }] })
}
