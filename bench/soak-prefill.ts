import { connect } from '../src/db/connect.js'
import type { BenchPayload } from './payload.js'

// SOAK_PREFILL_EVENTS: the events a five-minute soak stores on a quiet machine (about 1.3 million) take far longer
// on a loaded one, so the soak's late state (an events table and indexes larger than shared_buffers) is never
// reached there. These events are stored before the clock starts, through append_events(), the function the server
// calls, so their rows, ids and index entries are made as the server makes them: 1,000 events per call, each call a
// stream of its own in a category the load never touches.
const PER_CALL = 1000

export const prefill = async (databaseUrl: string, payload: BenchPayload, events: number): Promise<void> => {
  const sql = connect(databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  try {
    await fill(sql, payload, events)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

const fill = async (sql: ReturnType<typeof connect>, payload: BenchPayload, events: number): Promise<void> => {
  const body = `[${new Array(PER_CALL).fill(payload.eventJson).join(',')}]`
  for (let stream = 0; stream * PER_CALL < events; stream++) {
    const count = Math.min(PER_CALL, events - stream * PER_CALL)
    const text = count === PER_CALL ? body : `[${new Array(count).fill(payload.eventJson).join(',')}]`
    await sql`select outcome from append_events('default', ${`soakfill-${stream}`}, 'no_stream', null, ${text}::text::json)`
  }
}
