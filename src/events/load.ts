import { streamNotFound } from '../problems.js'
import type { Sql } from '../db/connect.js'
import { eventTextColumns } from './event-columns.js'
import { ChunkedPage } from './chunked-page.js'
import { eventPage, takePage } from './event-page.js'
import type { StoredEventText } from './read-log-text.js'
import type { LoadQuery, Snapshot } from './schemas.js'
import { snapshotColumns } from './snapshots.js'
import { storageTenant } from './types.js'

// A load's target and snapshot, with the events after the snapshot as a page read a chunk at a time (its first
// read made before any byte of the response is sent, so a database that does not answer is still a problem
// response). Its wire shape is LoadedStream (schemas.ts).
export interface LoadStart {
  streamId: string
  version: number
  snapshot: Snapshot | null
  events: ChunkedPage<StoredEventText>
}

// events per page of a load, besides the byte budget
const LOAD_PAGE_EVENTS = 1000

// the target version, beside the snapshot's columns (all null when there is no snapshot)
type TargetRow = { target: number | null } & { [K in keyof Snapshot]: Snapshot[K] | null }

// The seeds' "smart replay": restore the closest snapshot at or before the target, replay only the tail.
// The target is the stream's version (at `until`, when given), capped by `untilVersion`. A snapshot describes
// the state at its version whenever it was taken, so one written after `until` still serves a read as of then.
export const loadStream = async (sql: Sql, tenant: string, streamId: string, query: LoadQuery, chunkBytes: number): Promise<LoadStart> => {
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
  if (!row?.target) throw streamNotFound(streamId, query.until)
  const snapshot = toSnapshot(row)
  const target = row.target
  // SPEC "Snapshots": `load` is one object holding every event after the snapshot, so it cannot be paged: it is one
  // page without a count or byte limit, read and written a chunk at a time (LOAD_PAGE_EVENTS events at most each)
  const read = (after: number | undefined, _limit: number, maxBytes: number) => readTail(sql, owner, streamId, after ?? snapshot?.version ?? 0, target, maxBytes)
  const events = await ChunkedPage.open(read, (event: StoredEventText) => event.streamVersion, { limit: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER, chunkBytes })
  return { streamId, version: target, snapshot, events }
}

// The events in (after, target], one read.
const readTail = async (sql: Sql, owner: string, streamId: string, after: number, target: number, maxBytes: number) => {
  const rows = await eventPage<StoredEventText>(
    sql,
    eventTextColumns(sql),
    sql`tenant = ${owner} and stream_id = ${streamId} and stream_version > ${after} and stream_version <= ${target}`,
    { order: sql`stream_version`, key: sql`stream_version`, limit: LOAD_PAGE_EVENTS, maxBytes },
  )
  return takePage<StoredEventText>(rows)
}

const toSnapshot = ({ streamId, version, state, schemaVersion, createdAt }: TargetRow): Snapshot | null =>
  version === null ? null : { streamId: streamId!, version, state, schemaVersion: schemaVersion!, createdAt: createdAt! }
