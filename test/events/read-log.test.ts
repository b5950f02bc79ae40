import t from 'tap'
import type { Sql } from '../../src/db/connect.js'
import { readLog } from '../../src/events/read-log.js'
import { readLogText } from '../../src/events/read-log-text.js'
import { testDatabase } from '../helpers/test-database.js'

// Issue 18 point 8: a streamId prefix that matches nothing costs nothing, whatever plan PostgreSQL picks (a prepared
// statement's generic plan cannot know the prefix is selective). Measured as the event rows the read fetched in
// its transaction (pg_stat_xact_user_tables), not as time.
const { sql } = await testDatabase(t)
const EVENTS = 100_000

// 100,000 events of 3,000 streams, with their stream rows, as append_events would have written them
await sql`
  insert into events (global_position, tenant, stream_id, category, stream_version, event_id, type, data, metadata, created_at)
  select g, 'default', c || '-' || (g % 1000), c, g / 3000 + 1, gen_random_uuid(), 'Tick', '{}', '{}', now()
    from generate_series(1, ${EVENTS}) as g,
         lateral (select (array['order', 'customer', 'invoice'])[1 + g % 3] as c) as x`
await sql`select setval('events_global_position_seq', ${EVENTS})`
await sql`
  insert into streams (tenant, stream_id, category, version, created_at, updated_at)
  select tenant, stream_id, category, max(stream_version), now(), now() from events group by tenant, stream_id, category`
await sql`analyze events`
await sql`analyze streams`

type Read = (sql: Sql, prefix: string) => Promise<{ events: { streamId: string }[] }>
const readers: [string, Read][] = [
  ['readLog', (tx, prefix) => readLog(tx, 'default', EVENTS, { streamId: prefix, limit: 100 })],
  ['readLogText (the /events and replay read)', (tx, prefix) => readLogText(tx, 'default', EVENTS, { streamId: prefix, limit: 100 })],
]

// event rows this backend has fetched and not yet reported (no report happens inside a transaction)
const fetchedSoFar = async (tx: Sql): Promise<number> => {
  const [stats] = await tx<{ fetched: number }[]>`
    select (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::int as fetched
      from pg_stat_xact_user_tables
     where relname = 'events'`
  return stats?.fetched ?? 0
}

// the read, in a transaction of its own under the given plan mode, and the event rows it fetched
const measured = (mode: string, read: Read, prefix: string) =>
  sql.begin(async (transaction) => {
    const tx = transaction as unknown as Sql
    await tx`select set_config('plan_cache_mode', ${mode}, true)`
    const before = await fetchedSoFar(tx)
    const page = await read(tx, prefix)
    return { page, fetched: (await fetchedSoFar(tx)) - before }
  })

for (const mode of ['auto', 'force_generic_plan', 'force_custom_plan']) {
  for (const [name, read] of readers) {
    t.test(`${name}, ${mode}: a prefix no stream has reads no event; one that matches reads its page`, async (t) => {
      for (const prefix of ['zzz', 'order-1000', 'Order-', 'order-5~']) {
        // the same statement seven times: under auto a prepared statement turns generic after five runs
        for (let round = 0; round < 7; round++) {
          const { page, fetched } = await measured(mode, read, prefix)
          t.same(page.events, [], prefix)
          // a custom plan's planner looks at the ends of the stream_id index (a row or two); a full read is 100,000
          t.ok(fetched <= 10, `${prefix}: ${fetched} event rows fetched (round ${round})`)
        }
      }
      const { page, fetched } = await measured(mode, read, 'order-5')
      t.equal(page.events.length, 100)
      t.ok(page.events.every((event) => event.streamId.startsWith('order-5')))
      t.ok(fetched >= 100, 'the measure sees the rows a read does fetch')
    })
  }
}
