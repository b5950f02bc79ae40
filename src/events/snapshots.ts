import { Problem, streamNotFound } from '../problems.js'
import type { Sql, Tx } from '../db/connect.js'
import { toProblem } from '../db/pg-errors.js'
import type { Snapshot, SnapshotInput } from './schemas.js'
import { storageTenant } from './types.js'

export interface PutSnapshotResult {
  snapshot: Snapshot
  created: boolean
}

export const snapshotColumns = (sql: Sql | Tx) => sql`
  stream_id as "streamId",
  version,
  state,
  schema_version as "schemaVersion",
  created_at as "createdAt"`

// SPEC "Snapshots": a version above the stream's current one (or any version of a stream with no events)
// is a conflict; an existing version is replaced; only the newest (highest) `keep` are kept.
export const putSnapshot = async (
  sql: Sql,
  tenant: string,
  streamId: string,
  version: number,
  input: SnapshotInput,
  keep: number,
): Promise<PutSnapshotResult> => {
  const owner = storageTenant(tenant, streamId)
  try {
    return await sql.begin(async (tx) => {
      const [stream] = await tx<{ version: number }[]>`select version from streams where tenant = ${owner} and stream_id = ${streamId}`
      const current = stream?.version ?? 0
      if (version > current) {
        throw new Problem('conflict', { streamId, version, currentVersion: current }, `stream ${streamId} is at version ${current}; a snapshot cannot be above it`)
      }
      const [row] = await tx<(Snapshot & { created: boolean })[]>`
        insert into stream_snapshots as s (tenant, stream_id, version, state, schema_version, created_at)
        values (${owner}, ${streamId}, ${version}, ${JSON.stringify(input.state)}::text::jsonb, ${input.schemaVersion ?? 1}, date_trunc('milliseconds', now()))
        on conflict (tenant, stream_id, version) do update
          set state = excluded.state,
              schema_version = excluded.schema_version,
              created_at = excluded.created_at
        returning ${snapshotColumns(tx)}, (xmax = 0) as created`
      await pruneSnapshots(tx, owner, streamId, keep)
      const { created, ...snapshot } = row!
      return { snapshot, created }
    })
  } catch (error) {
    throw toProblem(error) ?? error
  }
}

const pruneSnapshots = async (tx: Tx, owner: string, streamId: string, keep: number): Promise<void> => {
  await tx`
    delete from stream_snapshots
     where tenant = ${owner}
       and stream_id = ${streamId}
       and version < (
         select version
           from stream_snapshots
          where tenant = ${owner}
            and stream_id = ${streamId}
          order by version desc
         offset ${keep - 1}
          limit 1)`
}

const requireStream = async (sql: Sql, owner: string, streamId: string): Promise<void> => {
  const [stream] = await sql`select 1 as present from streams where tenant = ${owner} and stream_id = ${streamId}`
  if (!stream) throw streamNotFound(streamId)
}

// Newest first.
export const listSnapshots = async (sql: Sql, tenant: string, streamId: string): Promise<Snapshot[]> => {
  const owner = storageTenant(tenant, streamId)
  const snapshots = await sql<Snapshot[]>`
    select ${snapshotColumns(sql)}
      from stream_snapshots
     where tenant = ${owner}
       and stream_id = ${streamId}
     order by version desc`
  if (snapshots.length === 0) await requireStream(sql, owner, streamId)
  return snapshots
}

export const latestSnapshot = async (sql: Sql, tenant: string, streamId: string, atOrBefore?: number): Promise<Snapshot> => {
  const [snapshot] = await sql<Snapshot[]>`
    select ${snapshotColumns(sql)}
      from stream_snapshots
     where tenant = ${storageTenant(tenant, streamId)}
       and stream_id = ${streamId}
       ${atOrBefore !== undefined ? sql`and version <= ${atOrBefore}` : sql``}
     order by version desc
     limit 1`
  if (!snapshot) {
    const where = atOrBefore !== undefined ? ` at or before version ${atOrBefore}` : ''
    throw new Problem('snapshot-not-found', { streamId }, `stream ${streamId} has no snapshot${where}`)
  }
  return snapshot
}
