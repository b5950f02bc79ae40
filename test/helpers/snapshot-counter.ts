import type { FastifyInstance } from 'fastify'
import type { Sql } from '../../src/db/connect.js'

// A declarative counter over the `tick` category whose `inc` makes any event applied twice show, and
// whose `Cleared` leaves a tombstone: one document per tenant and bucket.
export const TICKS = {
  source: { categories: ['tick'] },
  documentId: '$.data.bucket',
  handlers: { Tick: { inc: { count: 1 } }, Cleared: { delete: true } },
}

export const ticks = async (app: FastifyInstance, bucket: string, count: number, tenant = 'default', category = 'tick'): Promise<number> => {
  const res = await app.inject({
    method: 'POST',
    url: `/streams/${category}-${bucket}/events`,
    headers: { 'x-tenant-id': tenant },
    payload: { events: Array.from({ length: count }, () => ({ type: 'Tick', data: { bucket } })) },
  })
  if (res.statusCode !== 201) throw new Error(`append to ${category}-${bucket}: ${res.statusCode} ${res.body}`)
  return res.json().lastPosition as number
}

export const clear = async (app: FastifyInstance, bucket: string, tenant = 'default'): Promise<void> => {
  const res = await app.inject({
    method: 'POST',
    url: `/streams/tick-${bucket}/events`,
    headers: { 'x-tenant-id': tenant },
    payload: { events: [{ type: 'Cleared', data: { bucket } }] },
  })
  if (res.statusCode !== 201) throw new Error(`append to tick-${bucket}: ${res.statusCode} ${res.body}`)
}

export interface Row {
  tenant: string
  id: string
  document: { count: number } | null
  version: number
  updatedAt: string
}

// Every row of the live generation, tombstones included, in key order.
export const liveRows = (sql: Sql, name: string): Promise<Row[]> => sql<Row[]>`
  select d.tenant, d.id, d.document, d.version, d.updated_at as "updatedAt"
    from projections p
    join projection_documents d on d.projection = p.name and d.generation = p.live_generation
   where p.name = ${name}
   order by d.tenant, d.id`

// What the documents must be after every stored event (up to `upTo`) was applied exactly once, as `tenant/id → count`.
export const expectedCounts = async (sql: Sql, upTo = Number.MAX_SAFE_INTEGER): Promise<Record<string, number>> => {
  const events = await sql<{ key: string; type: string }[]>`
    select tenant || '/' || (data ->> 'bucket') as key, type
      from events
     where category = 'tick'
       and global_position <= ${upTo}
     order by global_position`
  const counts: Record<string, number> = {}
  for (const { key, type } of events) {
    if (type === 'Cleared') delete counts[key]
    else counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}

export const liveCounts = async (sql: Sql, name: string): Promise<Record<string, number>> =>
  Object.fromEntries((await liveRows(sql, name)).flatMap((row) => (row.document ? [[`${row.tenant}/${row.id}`, row.document.count]] : [])))
