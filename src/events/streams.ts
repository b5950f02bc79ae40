import { Problem } from '../problems.js'
import type { Sql } from '../db/connect.js'
import { readTenant, storageTenant } from './types.js'

export interface StreamInfo {
  streamId: string
  category: string
  version: number
  createdAt: string
  updatedAt: string
  snapshot: null
}

export interface StreamSummary {
  streamId: string
  category: string
  version: number
  updatedAt: string
}

export interface StreamListQuery {
  category?: string
  prefix?: string
  after?: string
  limit?: number
}

export const getStream = async (sql: Sql, tenant: string, streamId: string): Promise<StreamInfo> => {
  const [stream] = await sql<Omit<StreamInfo, 'snapshot'>[]>`
    select stream_id as "streamId", category, version, created_at as "createdAt", updated_at as "updatedAt"
      from streams
     where tenant = ${storageTenant(tenant, streamId)}
       and stream_id = ${streamId}`
  if (!stream) throw new Problem('stream-not-found', { streamId }, `stream ${streamId} has no events`)
  return { ...stream, snapshot: null }
}

export const listStreams = async (
  sql: Sql,
  tenant: string,
  query: StreamListQuery,
): Promise<{ streams: StreamSummary[]; next: string | null }> => {
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
