import type { Sql } from '../db/connect.js'
import { appendEvents } from '../events/append.js'
import { SYSTEM_TENANT } from '../events/types.js'

export type SystemEventType =
  | 'ProjectionStarted'
  | 'ProjectionStopped'
  | 'ProjectionFailed'
  | 'ProjectionSkippedEvent'
  | 'ProjectionSwapped'
  | 'ProjectionReset'
  | 'ProjectionSnapshotCreated'
  | 'ProjectionSnapshotRestored'

// The server records its own lifecycle as ordinary events in `$projection-{name}` (SPEC "System events").
export const recordSystemEvent = async (
  sql: Sql,
  name: string,
  type: SystemEventType,
  data: Record<string, unknown> = {},
  appended: () => void = () => {},
): Promise<void> => {
  await appendEvents(sql, SYSTEM_TENANT, `$projection-${name}`, { events: [{ type, data: { projection: name, ...data } }] })
  appended()
}
