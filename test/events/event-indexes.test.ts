import t from 'tap'
import type { Sql } from '../../src/db/connect.js'
import { appendEvents } from '../../src/events/append.js'
import { eventColumns } from '../../src/events/event-columns.js'
import { eventPage } from '../../src/events/event-page.js'
import { logBounds, logConditions, type LogQuery } from '../../src/events/read-log.js'
import { event } from '../helpers/fixtures.js'
import { EMBEDDED, testDatabase } from '../helpers/test-database.js'

// Every read SPEC names is served by an index of events (docs/performance.md "Indexes"): each query, as the code
// builds it, is planned with the index that the doc lists for it, on a log where its filter is selective. If an
// index is dropped or a query stops matching it, the plan changes and this fails.
const { sql } = await testDatabase(t)

// two tenants alike and one with fewer events; in each, 1% of events are rare: their own type, category (streams
// `rare-…`) and correlation id
const rare = (n: number): boolean => n % 100 === 7
for (let n = 0; n < 1500; n += 50) {
  const batch = Array.from({ length: 50 }, (_, i) => n + i)
  for (const tenant of ['default', 'other']) {
    const common = batch.filter((m) => !rare(m))
    await appendEvents(sql, tenant, `order-${n}`, { events: common.map((m) => event('OrderPlaced', { m }, { metadata: { correlationId: `c-${m % 3}` } })) })
    const few = batch.filter(rare)
    if (few.length) await appendEvents(sql, tenant, `rare-${n}`, { events: few.map((m) => event('RareHappened', { m }, { metadata: { correlationId: 'c-rare' } })) })
  }
}
await appendEvents(sql, 'few', 'order-1', { events: Array.from({ length: 30 }, (_, m) => event('OrderPlaced', { m })) })
await sql`analyze events`
const [{ head }] = await sql<{ head: number }[]>`select max(global_position)::int8 as head from events`

// the names of the indexes in the plan of `query` (seq scans ruled out: on a small table one could win)
const indexesOf = async (query: ReturnType<Sql>): Promise<string[]> =>
  sql.begin(async (tx) => {
    await tx`set local enable_seqscan = off`
    const [row] = await tx<Record<string, unknown>[]>`explain (format json) ${query}`
    const plan = Object.values(row!)[0]
    const names: string[] = []
    JSON.stringify(typeof plan === 'string' ? JSON.parse(plan) : plan, (key, value: unknown) => {
      if (key === 'Index Name') names.push(value as string)
      return value
    })
    return names
  }) as Promise<string[]>

const logPage = (query: LogQuery, tenant = 'default') => eventPage(sql, eventColumns(sql), logConditions(sql, tenant, head, query), logBounds(sql, query))

const cases: [string, () => ReturnType<Sql>, string][] = [
  ['GET /events', () => logPage({ limit: 10 }, 'few'), 'events_tenant_position_idx'],
  ['GET /events?type=', () => logPage({ types: ['RareHappened'] }), 'events_type_idx'],
  ['GET /events?category=', () => logPage({ category: 'rare' }), 'events_category_idx'],
  ['GET /events?streamId= (prefix)', () => logPage({ streamId: 'rare-' }), 'events_stream_version_key'],
  ['GET /events?correlationId=', () => logPage({ correlationId: 'c-rare' }), 'events_correlation_id_idx'],
  ['GET /events?since=&until=', () => logPage({ since: '2000-01-01T00:00:00.000Z', until: '2000-01-02T00:00:00.000Z' }), 'events_created_at_idx'],
  [
    'GET /streams/{id}/events',
    () => eventPage(sql, eventColumns(sql), sql`tenant = 'default' and stream_id = 'order-100' and stream_version >= 3`, { order: sql`stream_version`, key: sql`stream_version`, limit: 100, maxBytes: 1e9 }),
    'events_stream_version_key',
  ],
  ['stream version at `until`', () => sql`select max(stream_version) from events where tenant = 'default' and stream_id = 'order-100' and created_at <= now()`, 'events_stream_version_key'],
  ['idempotency: stored event ids', () => sql`select stream_id, stream_version from events where tenant = 'default' and event_id = '0b6c7a5e-3f1d-4c2a-8e9b-1a2b3c4d5e6f'`, 'events_event_id_key'],
  ['projections: every tenant from a position', () => sql`select global_position from events where global_position > ${head - 20} and global_position <= ${head} order by global_position limit 100`, 'events_pkey'],
]

// the embedded database (PGlite) plans by its own version's rules; these are PostgreSQL's plans
const OTHER_PLANNER = EMBEDDED && 'the embedded database plans by its own rules'

for (const [read, query, index] of cases) {
  t.test(`${read} is served by ${index}`, { skip: OTHER_PLANNER }, async (t) => {
    const used = await indexesOf(query())
    t.ok(used.includes(index), `plan uses: ${used.join(', ') || 'no index'}`)
  })
}
