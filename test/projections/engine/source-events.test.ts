import t from 'tap'
import { appendEvents } from '../../../src/events/append.js'
import type { Sql } from '../../../src/db/connect.js'
import { readSourceEvents, SourceReader, type SourceBatch } from '../../../src/projections/engine/source-events.js'
import { events } from '../../helpers/fixtures.js'
import { testDatabase } from '../../helpers/test-database.js'

// A worker's reads with the next batch read ahead: every read gives what a read of its own would have.
const { sql } = await testDatabase(t)
const source = { categories: ['order'] }
const options = { limit: 4, maxBytes: 16 * 1024 * 1024, exact: true }
for (let stream = 0; stream < 5; stream++) await appendEvents(sql, 'default', `order-${stream}`, { events: events(3) })
await appendEvents(sql, 'default', 'other-1', { events: events(3) })
const [{ head }] = await sql<{ head: number }[]>`select max(global_position)::int as head from events`

const positions = (batch: SourceBatch) => [batch.events.map((event) => event.globalPosition), batch.readTo]

// a pool that counts the reads it is given
const counting = (inner: Sql): { sql: Sql; reads: () => number } => {
  let reads = 0
  const sql = new Proxy(inner, {
    apply(target, self, args) {
      if (String(args[0]?.join?.('')).includes('page_index')) reads++
      return Reflect.apply(target, self, args)
    },
  })
  return { sql, reads: () => reads }
}

t.test('read through a head, batch after batch, the reader gives what reads of their own give, the next one read ahead', async (t) => {
  const counted = counting(sql)
  const reader = new SourceReader(counted.sql)
  let after = 0
  const batches: unknown[] = []
  while (after < head) {
    const batch = await reader.read(source, after, head, options)
    t.same(positions(batch), positions(await readSourceEvents(sql, source, after, head, options)), `after ${after}`)
    t.equal(counted.reads(), batch.readTo < head ? batches.length + 2 : batches.length + 1, 'the next batch was asked for before this one was applied')
    batches.push(positions(batch))
    after = batch.readTo
  }
  t.equal(batches.length, 4, '15 order events, 4 a batch')
  t.equal(after, head)
})

t.test('a read ahead serves only the read it anticipated; a head that moved on is read up to later', async (t) => {
  const counted = counting(sql)
  const reader = new SourceReader(counted.sql)
  const first = await reader.read(source, 0, head - 6, options)
  t.same(positions(first)[0], [1, 2, 3, 4])
  // the checkpoint stopped short of the batch (a failing event): the read ahead is not used
  const retried = await reader.read(source, 2, head - 6, options)
  t.same(positions(retried), positions(await readSourceEvents(sql, source, 2, head - 6, options)))
  // the single-event retry reads one event, whatever was read ahead
  const single = await reader.read(source, retried.readTo, head, { ...options, limit: 1 })
  t.same(positions(single), positions(await readSourceEvents(sql, source, retried.readTo, head, { ...options, limit: 1 })))
  // a batch read ahead against an older head is still a batch: it ends at that head, the rest comes next
  const old = await reader.read(source, single.readTo, head - 6, options)
  const stale = await reader.read(source, old.readTo, head, options)
  t.ok(stale.readTo <= head - 6, 'bounded by the head it was read against')
  const rest = await reader.read(source, stale.readTo, head, options)
  const all = [...old.events, ...stale.events, ...rest.events].map((event) => event.globalPosition)
  let next = rest.readTo
  while (next < head) {
    const more = await reader.read(source, next, head, options)
    all.push(...more.events.map((event) => event.globalPosition))
    next = more.readTo
  }
  const direct = await readSourceEvents(sql, source, single.readTo, head, { ...options, limit: 100 })
  t.same(all, direct.events.map((event) => event.globalPosition), 'nothing skipped, nothing twice')
})

t.test('a read ahead that failed is read again when it is wanted', async (t) => {
  let reads = 0
  // the second page read, the one read ahead, fails
  const flaky = new Proxy(sql, {
    apply(target, self, args) {
      if (String(args[0]?.join?.('')).includes('page_index') && ++reads === 2) return Promise.reject(new Error('connection lost'))
      return Reflect.apply(target, self, args)
    },
  })
  const reader = new SourceReader(flaky)
  const first = await reader.read(source, 0, head, options)
  t.equal(reads, 2, 'read ahead')
  const second = await reader.read(source, first.readTo, head, options)
  t.equal(reads, 4, 'read again, and the next one ahead')
  t.same(positions(second), positions(await readSourceEvents(sql, source, first.readTo, head, options)))
})
