import { Problem } from '../problems.js'
import type { Sql } from '../db/connect.js'
import { eventTextColumns } from './event-columns.js'
import type { StoredEventText } from './read-log-text.js'
import { snapshotColumns, type Snapshot } from './snapshots.js'
import { storageTenant } from './types.js'

export interface LoadQuery {
  untilVersion?: number
  until?: string
}

export interface LoadedStream {
  streamId: string
  version: number
  snapshot: Snapshot | null
  // as stored text, so a read gives data and metadata back exactly as sent
  events: StoredEventText[]
  snapshotDue: boolean
}

// the target version, beside the snapshot's columns (all null when there is no snapshot)
type TargetRow = { target: number | null } & { [K in keyof Snapshot]: Snapshot[K] | null }

// The seeds' "smart replay": restore the closest snapshot at or before the target, replay only the tail.
// The target is the stream's version (at `until`, when given), capped by `untilVersion`. A snapshot describes
// the state at its version whenever it was taken, so one written after `until` still serves a read as of then.
export const loadStream = async (
  sql: Sql,
  tenant: string,
  streamId: string,
  query: LoadQuery,
  snapshotEvery: number,
): Promise<LoadedStream> => {
  const owner = storageTenant(tenant, streamId)
  const head = query.until
    ? sql`select max(stream_version) as version from events where tenant = ${owner} and stream_id = ${streamId} and created_at <= ${query.until}`
    : sql`select version from streams where tenant = ${owner} and stream_id = ${streamId}`
  const [row] = await sql<TargetRow[]>`
    with head as (${head}),
         target as (select least(head.version, coalesce(${query.untilVersion ?? null}::bigint, head.version)) as version from head)
    select target.version as target,
           snapshot.*
      from target
      left join lateral (
        select ${snapshotColumns(sql)}
          from stream_snapshots
         where tenant = ${owner}
           and stream_id = ${streamId}
           and version <= target.version
         order by version desc
         limit 1
      ) as snapshot on true`
  if (!row?.target) throw new Problem('stream-not-found', { streamId }, `stream ${streamId} has no events${query.until ? ` at ${query.until}` : ''}`)
  const { target } = row
  const snapshot = toSnapshot(row)
  const events = await sql<StoredEventText[]>`
    select ${eventTextColumns(sql)}
      from events
     where tenant = ${owner}
       and stream_id = ${streamId}
       and stream_version > ${snapshot?.version ?? 0}
       and stream_version <= ${target}
     order by stream_version`
  return { streamId, version: target, snapshot, events, snapshotDue: events.length >= snapshotEvery }
}

const toSnapshot = ({ streamId, version, state, schemaVersion, createdAt }: TargetRow): Snapshot | null =>
  version === null ? null : { streamId: streamId!, version, state, schemaVersion: schemaVersion!, createdAt: createdAt! }
