import { streamNotFound } from '../problems.js'
import type { Sql } from '../db/connect.js'
import type { StreamInfo, StreamList, StreamListQuery, StreamSummary } from './schemas.js'
import { readTenant, storageTenant } from './types.js'

export const getStream = async (sql: Sql, tenant: string, streamId: string): Promise<StreamInfo> => {
  const owner = storageTenant(tenant, streamId)
  const [row] = await sql<(Omit<StreamInfo, 'snapshot'> & { snapshotVersion: number | null; schemaVersion: number; snapshotAt: string })[]>`
    select s.stream_id as "streamId", s.category, s.version, s.created_at as "createdAt", s.updated_at as "updatedAt",
           snapshot.version as "snapshotVersion", snapshot.schema_version as "schemaVersion", snapshot.created_at as "snapshotAt"
      from streams s
      left join lateral (
        select version, schema_version, created_at
          from stream_snapshots
         where tenant = ${owner}
           and stream_id = ${streamId}
         order by version desc
         limit 1
      ) as snapshot on true
     where s.tenant = ${owner}
       and s.stream_id = ${streamId}`
  if (!row) throw streamNotFound(streamId)
  const { snapshotVersion, schemaVersion, snapshotAt, ...stream } = row
  const snapshot = snapshotVersion === null ? null : { version: snapshotVersion, schemaVersion, createdAt: snapshotAt }
  return { ...stream, snapshot }
}

export const listStreams = async (
  sql: Sql,
  tenant: string,
  query: StreamListQuery,
): Promise<StreamList> => {
  const limit = query.limit ?? 100
  const { category, prefix, after } = query
  const streams = await sql<StreamSummary[]>`
    select stream_id as "streamId", category, version, updated_at as "updatedAt"
      from streams
     where tenant = ${readTenant(tenant, prefix ?? category)}
       ${category !== undefined ? sql`and category = ${category}` : sql``}
       ${prefix !== undefined ? sql`and stream_id >= ${prefix} and stream_id < ${prefix + '~'}` : sql``}
       ${after !== undefined ? sql`and stream_id > ${after}` : sql``}
     order by stream_id
     limit ${limit + 1}`
  const next = streams.length > limit ? streams[limit - 1]!.streamId : null
  return { streams: streams.slice(0, limit), next }
}
