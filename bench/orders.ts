import { connect } from '../src/db/connect.js'
import type { BenchServer } from './bench-server.js'

// The read model both projection benchmarks build: one document per order stream.
export const ORDER_DEFINITION = {
  source: { categories: ['order'] },
  documentId: '$.streamId',
  handlers: {
    OrderPlaced: { set: { status: 'placed', total: '$.data.total', customerId: '$.data.customerId' }, inc: { events: 1 } },
  },
}

const SEED_BATCH = 100

// `events` OrderPlaced events, `perStream` a stream (`order-0`, `order-1`, …), straight into the database
// through append_events over `lanes` connections, so a seed of a million takes seconds, not minutes.
export const seedOrders = async (
  server: BenchServer,
  payload: { data: unknown; metadata: unknown },
  events: number,
  perStream: number,
  lanes = 2,
): Promise<void> => {
  const sql = connect(server.databaseUrl, { max: lanes, applicationName: 'annalist-bench' })
  const event = JSON.stringify({ type: 'OrderPlaced', data: payload.data, metadata: payload.metadata })
  const run = `[${new Array(perStream).fill(event).join(',')}]`
  const streams = events / perStream
  const batches: number[] = []
  for (let first = 0; first < streams; first += SEED_BATCH) batches.push(first)
  const lane = async (): Promise<void> => {
    for (let first = batches.shift(); first !== undefined; first = batches.shift()) {
      await sql`
        select count(*)
          from generate_series(${first}::int, ${Math.min(first + SEED_BATCH, streams) - 1}::int) as s
          cross join lateral append_events('default', 'order-' || s, 'any', null, ${run}::text::json)`
    }
  }
  await Promise.all(Array.from({ length: lanes }, lane))
  await sql`vacuum analyze events`
  await sql.end({ timeout: 5 })
}
