import t from 'tap'
import { defineGroup } from '../../src/consumer-groups/groups.js'
import { lookAtGroup } from '../../src/consumer-groups/lease.js'
import type { Sql } from '../../src/db/connect.js'
import { EMBEDDED, testDatabase } from '../helpers/test-database.js'

// A poll joins the leased events' stored text by key. A plain join let the planner, on a young log whose statistics
// were taken when it was small, merge the function's rows against a scan of every event of the tenant: every poll
// read the whole log (seen as p50 delivery in the hundreds of ms on a store seconds old).
t.test('a poll reads the events it leases by key, not the log, on a log analyzed while it was small', { skip: EMBEDDED && 'tuple counters are PostgreSQL statistics' }, async (t) => {
  const { sql } = await testDatabase(t)
  const event = JSON.stringify([{ type: 'Logged', data: { n: 1 } }])
  await sql`select append_events('default', 'other-0', 'any', null, ${event}::text::json)`
  await sql`analyze`
  await sql`
    select count(*)
      from generate_series(1, 3000) as i
     cross join lateral append_events('default', 'other-' || i, 'any', null, ${event}::text::json)`
  const [{ head }] = await sql<{ head: number }[]>`select max(global_position)::int as head from events`
  await defineGroup(sql, 'default', 'workers', { source: { categories: ['job'] }, start: 'end' }, head)
  const [{ last }] = await sql<{ last: number }[]>`select last_position::int as last from append_events('default', 'job-1', 'any', null, ${event}::text::json)`

  const fetched = await sql.begin(async (tx) => {
    const look = await lookAtGroup(tx as unknown as Sql, 'default', 'workers', { max: 100, maxBytes: 1 << 20, head: last, fill: true, waitMs: 0 })
    t.same(look.deliveries.map((delivery) => delivery.event.globalPosition), [last], 'the one matching event is leased')
    // rows of events this transaction read: whole-table scans, bitmap scans, and fetches through each index
    const [{ tuples }] = await tx<{ tuples: number }[]>`
      select (pg_stat_get_xact_tuples_returned('events'::regclass) + pg_stat_get_xact_tuples_fetched('events'::regclass)
              + (select sum(pg_stat_get_xact_tuples_fetched(indexrelid)) from pg_index where indrelid = 'events'::regclass))::int as tuples`
    return tuples
  })
  t.ok(fetched < 100, `the poll fetched ${fetched} rows of events (3,002 in the log)`)
})
