import { streamNotFound } from '../problems.js'
import type { Sql } from '../db/connect.js'
import { eventTextColumns } from './event-columns.js'
import { eventPage, takePage } from './event-page.js'
import type { StoredEventText } from './read-log-text.js'
import type { LoadQuery, Snapshot } from './schemas.js'
import { snapshotColumns } from './snapshots.js'
import { storageTenant } from './types.js'

// A load's target and snapshot, with the first page of the events after the snapshot (read before any byte of
// the response is sent, so a database that does not answer is still a problem response); loadJson writes the
// LoadedStream from it.
export interface LoadStart {
  streamId: string
  version: number
  snapshot: Snapshot | null
  events: StoredEventText[]
  // the version of the next event to read; null when `events` holds every event up to the target
  following: number | null
}

export interface LoadJsonOptions {
  maxBytes: number
  snapshotEvery: number
  // one event as JSON (upcast where an upcaster covers its type)
  eventJson: (event: StoredEventText) => string
}

// events per page of a load, besides the byte budget
const LOAD_PAGE_EVENTS = 1000

// the target version, beside the snapshot's columns (all null when there is no snapshot)
type TargetRow = { target: number | null } & { [K in keyof Snapshot]: Snapshot[K] | null }

// The seeds' "smart replay": restore the closest snapshot at or before the target, replay only the tail.
// The target is the stream's version (at `until`, when given), capped by `untilVersion`. A snapshot describes
// the state at its version whenever it was taken, so one written after `until` still serves a read as of then.
export const loadStream = async (sql: Sql, tenant: string, streamId: string, query: LoadQuery, maxBytes: number): Promise<LoadStart> => {
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
  const first = await readTail(sql, owner, streamId, snapshot?.version ?? 0, row.target, maxBytes)
  return { streamId, version: row.target, snapshot, ...first }
}

// SPEC "Snapshots": `load` is one object holding every event after the snapshot, so it cannot be paged. It is
// written as JSON text a page at a time instead (each at most `maxBytes` of events, always one event), and the
// next page is read only once the response stream asks for more: a load of any size, to a client of any speed,
// costs bounded memory. A read that fails after the first page ends the response unfinished (invalid JSON).
export async function* loadJson(sql: Sql, tenant: string, loaded: LoadStart, options: LoadJsonOptions): AsyncGenerator<string> {
  const { streamId, version, snapshot } = loaded
  yield `{"streamId":${JSON.stringify(streamId)},"version":${version},"snapshot":${JSON.stringify(snapshot)},"events":[`
  let page: { events: StoredEventText[]; following: number | null } = loaded
  let count = 0
  for (;;) {
    if (page.events.length > 0) yield (count > 0 ? ',' : '') + page.events.map(options.eventJson).join(',')
    count += page.events.length
    if (page.following === null) break
    page = await readTail(sql, storageTenant(tenant, streamId), streamId, page.following - 1, version, options.maxBytes)
  }
  yield `],"snapshotDue":${count >= options.snapshotEvery}}`
}

// The events in (after, target], one page.
const readTail = async (sql: Sql, owner: string, streamId: string, after: number, target: number, maxBytes: number) => {
  const rows = await eventPage<StoredEventText>(
    sql,
    eventTextColumns(sql),
    sql`tenant = ${owner} and stream_id = ${streamId} and stream_version > ${after} and stream_version <= ${target}`,
    { order: sql`stream_version`, key: sql`stream_version`, limit: LOAD_PAGE_EVENTS, maxBytes },
  )
  return takePage(rows)
}

const toSnapshot = ({ streamId, version, state, schemaVersion, createdAt }: TargetRow): Snapshot | null =>
  version === null ? null : { streamId: streamId!, version, state, schemaVersion: schemaVersion!, createdAt: createdAt! }
