import t from 'tap'
import { appendEvents } from '../../src/events/append.js'
import { LogHead } from '../../src/events/log-head.js'
import { readLog } from '../../src/events/read-log.js'
import { DEFAULT_MAX_PAGE_BYTES } from '../../src/events/event-page.js'
import { readLogBatch } from '../../src/events/read-log-batch.js'
import { eventMatcher, type LogFilter } from '../../src/subscriptions/event-filter.js'
import { event } from '../helpers/fixtures.js'
import { testDatabase } from '../helpers/test-database.js'

// A live subscriber filters the feed's shared batch in memory; it must select exactly what readLog's SQL selects.
const { sql } = await testDatabase(t)

const writes: [string, string, string, Record<string, unknown>][] = [
  ['default', 'order-1', 'OrderPlaced', { correlationId: 'c-1' }],
  ['default', 'order-1', 'ItemAdded', { correlationId: 7 }],
  ['default', 'order-10', 'OrderPlaced', { correlationId: null }],
  ['default', 'order', 'OrderPlaced', {}],
  ['default', 'customer-1', 'CustomerRegistered', { correlationId: 'c-1' }],
  ['acme', 'order-1', 'OrderPlaced', { correlationId: 'c-1' }],
  ['acme', '$projection-x', 'ProjectionStarted', {}],
  ['default', '$projections', 'ProjectionBackfillRequested', { correlationId: 'c-1' }],
]
for (const [tenant, streamId, type, metadata] of writes) await appendEvents(sql, tenant, streamId, { events: [event(type, {}, { metadata })] })
const head = await new LogHead(sql).catchUp(5000)
const all = await readLogBatch(sql, 0, head, 1000, DEFAULT_MAX_PAGE_BYTES)
t.equal(all.events.length, writes.length, 'the batch holds every tenant’s events')

const middle = all.events[3]!.event.createdAt
// half a millisecond after `middle`, and half a millisecond before it: createdAt has millisecond precision
const halfAfter = middle.replace('Z', '5Z')
const halfBefore = new Date(Date.parse(middle) - 1).toISOString().replace('Z', '5Z')
const filters: LogFilter[] = [
  {},
  { types: ['OrderPlaced'] },
  { types: ['OrderPlaced', 'ItemAdded'] },
  { category: 'order' },
  { category: 'order-1' },
  { category: 'orde' },
  { streamId: 'order-1' },
  { streamId: 'order' },
  { correlationId: 'c-1' },
  { correlationId: '7' },
  { correlationId: 'null' },
  { since: middle },
  { until: middle },
  { since: halfAfter },
  { since: halfBefore },
  { until: halfAfter },
  { until: halfBefore },
  { since: middle.replace('T', 't').replace('Z', '+00:00') },
  { streamId: '$projection' },
  { category: '$projections' },
  { streamId: '$' },
  { types: ['OrderPlaced'], category: 'order', correlationId: 'c-1' },
]

for (const tenant of ['default', 'acme', 'globex']) {
  for (const filter of filters) {
    t.test(`${tenant} ${JSON.stringify(filter)}`, async (t) => {
      const expected = (await readLog(sql, tenant, head, { ...filter, limit: 1000 })).events.map((e) => e.globalPosition)
      const matches = eventMatcher(tenant, filter)
      const actual = all.events.filter(({ tenant: owner, event }) => matches(owner, event)).map(({ event }) => event.globalPosition)
      t.same(actual, expected)
    })
  }
}
