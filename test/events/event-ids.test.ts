import { randomUUID } from 'node:crypto'
import t from 'tap'
import { appendAlone, appendBatch, type PendingAppend } from '../../src/events/append-call.js'
import { appendEvents } from '../../src/events/append.js'
import { event, events, streamId, withId } from '../helpers/fixtures.js'
import { EMBEDDED, testDatabase } from '../helpers/test-database.js'

// Ids the server makes are time-ordered (sql/0023, docs/performance.md "Soak"): version 7 of RFC 9562, so the
// unique index on (tenant, event_id) grows at its right end instead of taking inserts on random leaves.
const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const millisOf = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16)

const pending = (id: string, count: number): PendingAppend => ({
  tenant: 'default',
  streamId: id,
  kind: 'any',
  version: null,
  count,
  eventIds: [],
  events: JSON.stringify(Array.from({ length: count }, (_, index) => ({ type: 'Tick', data: { index } }))),
})

t.test('event ids the server makes', async (t) => {
  const { sql } = await testDatabase(t)
  const stored = (ids: string[]) =>
    sql<{ id: string; createdAt: string; position: number }[]>`
      select event_id::text as id, created_at as "createdAt", global_position as position
        from events where stream_id in ${sql(ids)} order by global_position`

  t.test('are version 7, stamped with the time of the append, through either append function', async (t) => {
    const alone = streamId()
    const batched = [streamId(), streamId()]
    const before = Date.now()
    await appendAlone(sql, pending(alone, 3))
    await appendBatch(sql, [[pending(batched[0]!, 2)], [pending(batched[1]!, 2)]])
    const after = Date.now()
    const rows = await stored([alone, ...batched])
    t.equal(rows.length, 7)
    for (const { id, createdAt } of rows) {
      t.match(id, V7, `${id} is a version 7 UUID`)
      t.ok(millisOf(id) >= before - 5 && millisOf(id) <= after + 5, 'its time is the time of the append')
      t.ok(millisOf(id) >= Date.parse(createdAt), 'made after the append took its createdAt')
    }
  })

  t.test('follow one another in the order they were made', async (t) => {
    const id = streamId()
    for (let i = 0; i < 20; i++) await appendEvents(sql, 'default', id, { events: events(3) })
    const ids = (await stored([id])).map((row) => row.id)
    for (let i = 1; i < ids.length; i++) {
      t.ok(millisOf(ids[i]!) >= millisOf(ids[i - 1]!), 'an id never goes back in time')
      // Between appends PostgreSQL's clock (microseconds) has moved, so the sub-millisecond bits order them; within
      // an append it may not have. The embedded database's clock ticks in milliseconds: only those order its ids.
      if (i % 3 === 0 && !EMBEDDED) t.ok(ids[i]! > ids[i - 1]!, `the first id of append ${i / 3 + 1} sorts after the last of the one before`)
    }
  })

  t.test('stay unique under racing appenders', async (t) => {
    const streams = Array.from({ length: 8 }, () => streamId('race'))
    const writers = Array.from({ length: 32 }, async (_, writer) => {
      for (let i = 0; i < 25; i++) await appendEvents(sql, 'default', streams[(writer + i) % streams.length]!, { events: events(1 + (i % 3)) })
    })
    await Promise.all(writers)
    const ids = (await stored(streams)).map((row) => row.id)
    t.equal(ids.length, 32 * (9 * 1 + 8 * 2 + 8 * 3), 'every acknowledged event stored')
    t.equal(new Set(ids).size, ids.length, 'no id twice')
    t.ok(ids.every((id) => V7.test(id)), 'all version 7')
  })

  t.test('ids a client sends are stored as sent', async (t) => {
    const id = streamId()
    const sent = withId(event())
    const random = randomUUID()
    await appendEvents(sql, 'default', id, { events: [sent, { ...event(), eventId: random }] })
    t.same((await stored([id])).map((row) => row.id), [sent.eventId, random])
  })
})
