import { randomUUID } from 'node:crypto'
import t from 'tap'
import { appendEvents } from '../../src/events/append.js'
import { readStream } from '../../src/events/read-stream.js'
import { Problem } from '../../src/problems.js'
import { event, events, streamId, withId } from '../helpers/fixtures.js'
import { testDatabase } from '../helpers/test-database.js'

const problemCode = (error: unknown): string | undefined => (error instanceof Problem ? error.code : undefined)

t.test('append', async (t) => {
  const { sql } = await testDatabase(t)

  t.test('events of one request get contiguous versions and increasing positions', async (t) => {
    const id = streamId()
    const first = await appendEvents(sql, 'default', id, { events: events(3) })
    const second = await appendEvents(sql, 'default', id, { events: events(2) })
    t.match(first, { streamId: id, firstVersion: 1, lastVersion: 3 })
    t.match(second, { firstVersion: 4, lastVersion: 5 })
    t.ok(second.firstPosition > first.lastPosition)
    const page = await readStream(sql, 'default', id, {})
    t.same(page.events.map((e) => e.streamVersion), [1, 2, 3, 4, 5])
    const positions = page.events.map((e) => e.globalPosition)
    t.same(positions, [...positions].sort((a, b) => a - b), 'positions follow versions')
  })

  t.test('expectedVersion 0 and no_stream only create a stream', async (t) => {
    const id = streamId()
    await appendEvents(sql, 'default', id, { expectedVersion: 0, events: events(1) })
    for (const expectedVersion of [0, 'no_stream'] as const) {
      await t.rejects(appendEvents(sql, 'default', id, { expectedVersion, events: events(1) }), {
        code: 'wrong-expected-version',
        extra: { expectedVersion, currentVersion: 1 },
      })
    }
    await appendEvents(sql, 'default', streamId(), { expectedVersion: 'no_stream', events: events(1) })
  })

  t.test('an integer expectedVersion must equal the current version', async (t) => {
    const id = streamId()
    await appendEvents(sql, 'default', id, { events: events(2) })
    await t.rejects(appendEvents(sql, 'default', id, { expectedVersion: 1, events: events(1) }), {
      code: 'wrong-expected-version',
      extra: { expectedVersion: 1, currentVersion: 2 },
    })
    await t.rejects(appendEvents(sql, 'default', streamId(), { expectedVersion: 3, events: events(1) }), {
      extra: { currentVersion: 0 },
    })
    const ok = await appendEvents(sql, 'default', id, { expectedVersion: 2, events: events(1) })
    t.equal(ok.lastVersion, 3)
  })

  t.test('exists needs a stream with events; any takes whatever is there', async (t) => {
    const id = streamId()
    await t.rejects(appendEvents(sql, 'default', id, { expectedVersion: 'exists', events: events(1) }), {
      code: 'wrong-expected-version',
      extra: { expectedVersion: 'exists', currentVersion: 0 },
    })
    await appendEvents(sql, 'default', id, { expectedVersion: 'any', events: events(1) })
    const result = await appendEvents(sql, 'default', id, { expectedVersion: 'exists', events: events(1) })
    t.equal(result.lastVersion, 2)
  })

  t.test('a rejected append writes nothing', async (t) => {
    const id = streamId()
    await appendEvents(sql, 'default', id, { events: events(1) })
    const [before] = await sql`select count(*)::int as n, (select last_value from events_global_position_seq) as seq from events`
    await t.rejects(appendEvents(sql, 'default', id, { expectedVersion: 7, events: events(3) }))
    const [after] = await sql`select count(*)::int as n from events`
    t.equal(after!.n, before!.n)
    t.equal((await readStream(sql, 'default', id, {})).version, 1)
  })

  t.test('a batch fails whole when one of its events cannot be stored', async (t) => {
    const id = streamId()
    const taken = withId(event())
    await appendEvents(sql, 'default', streamId(), { events: [taken] })
    const [{ n: before }] = await sql<{ n: number }[]>`select count(*)::int as n from events`
    // the second event's id is taken elsewhere, so nothing of this request may land
    await t.rejects(appendEvents(sql, 'default', id, { events: [withId(event()), taken] }), { code: 'duplicate-event-id' })
    const [{ n: after }] = await sql<{ n: number }[]>`select count(*)::int as n from events`
    t.equal(after, before)
    await t.rejects(readStream(sql, 'default', id, {}), { code: 'stream-not-found' })
    // and a jsonb-refused value (NUL) in the last event rolls back the first two
    await t.rejects(appendEvents(sql, 'default', id, { events: [event(), event(), event('X', { text: 'a\u0000b' })] }), {
      code: 'validation-failed',
    })
    await t.rejects(readStream(sql, 'default', id, {}), { code: 'stream-not-found' })
  })
})

t.test('idempotent retries', async (t) => {
  const { sql } = await testDatabase(t)

  t.test('the same request again answers the original result, duplicate, and writes nothing', async (t) => {
    const id = streamId()
    const batch = [withId(event()), withId(event())]
    await appendEvents(sql, 'default', id, { events: events(1) })
    const original = await appendEvents(sql, 'default', id, { expectedVersion: 1, events: batch })
    await appendEvents(sql, 'default', id, { events: events(1) })
    // whatever expectedVersion says
    for (const expectedVersion of [1, 0, 'no_stream', 'exists', 'any', 99] as const) {
      const retry = await appendEvents(sql, 'default', id, { expectedVersion, events: batch })
      t.same(retry, { ...original, duplicate: true })
    }
    t.equal((await readStream(sql, 'default', id, {})).version, 4)
  })

  t.test('partly stored ids are a duplicate-event-id conflict', async (t) => {
    const id = streamId()
    const a = withId(event())
    const b = withId(event())
    await appendEvents(sql, 'default', id, { events: [a] })
    await t.rejects(appendEvents(sql, 'default', id, { events: [a, b] }), { code: 'duplicate-event-id' })
    await t.rejects(appendEvents(sql, 'default', id, { events: [a, event()] }), { code: 'duplicate-event-id' })
    t.equal((await readStream(sql, 'default', id, {})).version, 1)
  })

  t.test('ids stored in another order or not contiguous are a conflict', async (t) => {
    const id = streamId()
    const [a, b, c] = [withId(event()), withId(event()), withId(event())]
    await appendEvents(sql, 'default', id, { events: [a, b, c] })
    await t.rejects(appendEvents(sql, 'default', id, { events: [b, a] }), { code: 'duplicate-event-id' })
    await t.rejects(appendEvents(sql, 'default', id, { events: [a, c] }), { code: 'duplicate-event-id' })
    const tail = await appendEvents(sql, 'default', id, { events: [b, c] })
    t.match(tail, { firstVersion: 2, lastVersion: 3, duplicate: true })
  })

  t.test('the same event id in another stream is a conflict', async (t) => {
    const a = withId(event())
    await appendEvents(sql, 'default', streamId(), { events: [a] })
    await t.rejects(appendEvents(sql, 'default', streamId(), { events: [a] }), { code: 'duplicate-event-id' })
  })

  t.test('event ids are unique per tenant, not across tenants', async (t) => {
    const a = withId(event())
    const id = streamId()
    await appendEvents(sql, 'acme', id, { events: [a] })
    const other = await appendEvents(sql, 'globex', id, { events: [a] })
    t.equal(other.duplicate, undefined)
  })

  t.test('racing copies of one request: one writes, every other answers duplicate', async (t) => {
    for (const expectedVersion of ['any', 0, 'no_stream'] as const) {
      const id = streamId()
      const batch = [withId(event()), withId(event())]
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, () => appendEvents(sql, 'default', id, { expectedVersion, events: batch })),
      )
      const fulfilled = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
      t.equal(fulfilled.length, 12, `${expectedVersion}: every copy succeeds: ${results.filter((r) => r.status === 'rejected').map((r) => problemCode((r as PromiseRejectedResult).reason))}`)
      t.equal(fulfilled.filter((r) => !r.duplicate).length, 1, 'exactly one wrote')
      t.equal((await readStream(sql, 'default', id, {})).version, 2)
    }
  })
})

t.test('racing appenders with the same expectedVersion: exactly one wins', async (t) => {
  const { sql } = await testDatabase(t, { max: 30 })
  const id = streamId()
  await appendEvents(sql, 'default', id, { events: events(1) })
  for (let round = 1; round <= 5; round++) {
    const attempts = Array.from({ length: 24 }, (_, client) =>
      appendEvents(sql, 'default', id, {
        expectedVersion: round,
        events: [event('Raced', { client, round }, { eventId: randomUUID() })],
      }),
    )
    const results = await Promise.allSettled(attempts)
    const winners = results.filter((r) => r.status === 'fulfilled')
    const losers = results.filter((r) => r.status === 'rejected').map((r) => problemCode((r as PromiseRejectedResult).reason))
    t.equal(winners.length, 1, `round ${round}: one winner`)
    t.same(new Set(losers), new Set(['wrong-expected-version']), 'every loser is told the expected version was wrong')
  }
  const page = await readStream(sql, 'default', id, {})
  t.same(page.events.map((e) => e.streamVersion), [1, 2, 3, 4, 5, 6], 'versions contiguous, one event per round')
  t.same(page.events.slice(1).map((e) => (e.data as { round: number }).round), [1, 2, 3, 4, 5])
})

t.test('many appenders on shared streams with any: no lost or duplicated version', async (t) => {
  const { sql } = await testDatabase(t, { max: 30 })
  const ids = [streamId(), streamId(), streamId()]
  const acks = await Promise.all(
    Array.from({ length: 150 }, (_, i) => appendEvents(sql, 'default', ids[i % 3]!, { events: events(1 + (i % 4)) })),
  )
  for (const id of ids) {
    const expected = acks.filter((a) => a.streamId === id).reduce((sum, a) => sum + a.lastVersion - a.firstVersion + 1, 0)
    const page = await readStream(sql, 'default', id, { limit: 1000 })
    t.equal(page.version, expected)
    t.same(page.events.map((e) => e.streamVersion), Array.from({ length: expected }, (_, i) => i + 1))
  }
})
