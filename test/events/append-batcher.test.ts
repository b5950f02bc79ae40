import t, { type Test } from 'tap'
import { appendEvents, type AppendRequest, type AppendResult } from '../../src/events/append.js'
import { appendBatchStats, type AppendBatchStats } from '../../src/events/append-batcher.js'
import { readStream } from '../../src/events/read-stream.js'
import { connect, type Sql } from '../../src/db/connect.js'
import { Problem } from '../../src/problems.js'
import { event, events, streamId, withId } from '../helpers/fixtures.js'
import { EMBEDDED, testDatabase } from '../helpers/test-database.js'
import { waitFor } from '../helpers/wait-for.js'

type Append = [tenant: string, streamId: string, request: AppendRequest]

const outcome = (settled: PromiseSettledResult<AppendResult>): AppendResult | string =>
  settled.status === 'fulfilled' ? settled.value : settled.reason instanceof Problem ? settled.reason.code : String(settled.reason)

// An append goes out at once, alone, when no batch is in flight: this lead does, so every append made
// meanwhile (here: in the same tick) waits and goes in the next batch. Answers the settled appends and what
// the batcher did for them.
const burst = async (sql: Sql, appends: Append[]): Promise<{ results: (AppendResult | string)[]; stats: AppendBatchStats }> => {
  const before = appendBatchStats(sql)
  const lead = appendEvents(sql, 'default', streamId('lead'), { events: events(1) })
  const settled = await Promise.allSettled(appends.map(([tenant, id, request]) => appendEvents(sql, tenant, id, request)))
  await lead
  const after = appendBatchStats(sql)
  return {
    results: settled.map(outcome),
    stats: { batches: after.batches - before.batches, appends: after.appends - before.appends, fallbacks: after.fallbacks - before.fallbacks, largest: after.largest, waiting: after.waiting },
  }
}

// Every written append is stored as answered: its events at its versions and positions, in its stream.
const checkStored = async (t: Test, sql: Sql, appends: Append[], results: (AppendResult | string)[]): Promise<void> => {
  for (const [index, result] of results.entries()) {
    if (typeof result === 'string' || result.duplicate) continue
    const [tenant, id, request] = appends[index]!
    const page = await readStream(sql, tenant, id, { from: result.firstVersion, limit: result.lastVersion - result.firstVersion + 1 })
    t.same(
      page.events.map((stored) => [stored.streamVersion, stored.type, stored.data]),
      request.events.map((sent, offset) => [result.firstVersion + offset, sent.type, sent.data]),
      `append ${index} is stored at its versions`,
    )
    t.equal(page.events[0]?.globalPosition, result.firstPosition)
    t.equal(page.events.at(-1)?.globalPosition, result.lastPosition)
  }
}

t.test('appends made while one is in flight share one transaction, each with the outcome it would get alone, in arrival order', async (t) => {
  const { sql } = await testDatabase(t)
  const [old, fresh, created, missing, taken] = [streamId(), streamId(), streamId(), streamId(), streamId()]
  await appendEvents(sql, 'default', old, { events: events(2) })
  const stored = withId(event('Taken'))
  const original = await appendEvents(sql, 'default', taken, { events: [stored] })
  const elsewhere = withId(event('Taken'))
  await appendEvents(sql, 'default', streamId(), { events: [elsewhere] })
  const appends: Append[] = [
    ['default', old, { expectedVersion: 2, events: events(1) }],
    // sees the one before it
    ['default', old, { expectedVersion: 3, events: events(2) }],
    ['default', old, { expectedVersion: 3, events: events(1) }],
    ['default', created, { expectedVersion: 'no_stream', events: [withId(event()), withId(event())] }],
    ['default', created, { expectedVersion: 'exists', events: events(1) }],
    ['default', created, { expectedVersion: 0, events: events(1) }],
    ['default', missing, { expectedVersion: 'exists', events: events(1) }],
    // an idempotent retry of an append committed earlier, and an id stored in another stream
    ['default', taken, { expectedVersion: 7, events: [stored] }],
    ['default', fresh, { events: [event(), elsewhere] }],
    ['acme', old, { events: events(1) }],
  ]
  const { results, stats } = await burst(sql, appends)
  t.same(stats, { batches: 2, appends: appends.length + 1, fallbacks: 0, largest: appends.length, waiting: 0 }, 'the lead went alone, the others in one batch')
  t.match(results, [
    { streamId: old, firstVersion: 3, lastVersion: 3 },
    { streamId: old, firstVersion: 4, lastVersion: 5 },
    'wrong-expected-version',
    { streamId: created, firstVersion: 1, lastVersion: 2 },
    { streamId: created, firstVersion: 3, lastVersion: 3 },
    'wrong-expected-version',
    'wrong-expected-version',
    { ...original, duplicate: true },
    'duplicate-event-id',
    { streamId: old, firstVersion: 1, lastVersion: 1 },
  ])
  const conflicts = await Promise.allSettled([
    appendEvents(sql, 'default', old, { expectedVersion: 3, events: events(1) }),
    appendEvents(sql, 'default', created, { expectedVersion: 0, events: events(1) }),
    appendEvents(sql, 'default', missing, { expectedVersion: 'exists', events: events(1) }),
  ])
  t.same(
    conflicts.map((settled) => (settled.status === 'rejected' ? (settled.reason as Problem).extra : settled)),
    [{ expectedVersion: 3, currentVersion: 5 }, { expectedVersion: 0, currentVersion: 3 }, { expectedVersion: 'exists', currentVersion: 0 }],
    'the stores the batch left behind answer conflicts with the versions it wrote',
  )
  const written = results.filter((result): result is AppendResult => typeof result !== 'string' && !result.duplicate)
  const positions = written.map((result) => [result.firstPosition, result.lastPosition]).flat()
  t.same(positions, [...positions].sort((a, b) => a - b), 'positions follow arrival order')
  await checkStored(t, sql, appends, results)
  await t.rejects(readStream(sql, 'default', missing, {}), { code: 'stream-not-found' }, 'a refused append to a missing stream leaves no stream')
  t.same(await sql`select stream_id from streams where version = 0`, [], 'no stream row is left at version 0')
  await t.rejects(readStream(sql, 'default', fresh, {}), { code: 'stream-not-found' })
})

t.test('idempotent retries inside one burst and across batches answer the original result', async (t) => {
  const { sql } = await testDatabase(t)
  const id = streamId()
  const sent = [withId(event()), withId(event())]
  const tail = { events: [sent[1]!] }
  const appends: Append[] = [
    ['default', id, { expectedVersion: 0, events: sent }],
    ['default', id, { expectedVersion: 0, events: sent }],
    ['default', id, { expectedVersion: 'exists', events: events(1) }],
    ['default', id, { expectedVersion: 'no_stream', events: sent }],
    ['default', id, tail],
  ]
  const { results, stats } = await burst(sql, appends)
  const first = results[0] as AppendResult
  t.match(first, { firstVersion: 1, lastVersion: 2 })
  t.notOk(first.duplicate)
  t.same(results[1], { ...first, duplicate: true }, 'a copy sent at once is a duplicate, whatever it expects')
  t.match(results[2], { firstVersion: 3, lastVersion: 3 })
  t.same(results[3], { ...first, duplicate: true })
  t.same(results[4], { streamId: id, firstVersion: 2, lastVersion: 2, firstPosition: first.lastPosition, lastPosition: first.lastPosition, duplicate: true })
  // a batch ends before an append that repeats an id of an earlier one in it
  t.same(stats, { batches: 5, appends: 6, fallbacks: 0, largest: 2, waiting: 0 }, 'copies go in the batches after the original')
  const later = await appendEvents(sql, 'default', id, { expectedVersion: 'no_stream', events: sent })
  t.same(later, { ...first, duplicate: true }, 'and a retry in a later batch too')
  t.equal((await readStream(sql, 'default', id, {})).version, 3)
})

t.test('an append the database refuses fails alone: its batch runs again one append at a time', async (t) => {
  const { sql } = await testDatabase(t)
  const [id, other] = [streamId(), streamId()]
  const appends: Append[] = [
    ['default', id, { expectedVersion: 0, events: events(1) }],
    // not a uuid: the route would refuse it; the store's caller gets what the database says
    ['default', other, { events: [event('Bad', {}, { eventId: 'not-a-uuid' })] }],
    ['default', id, { expectedVersion: 1, events: events(2) }],
    ['default', id, { expectedVersion: 1, events: events(1) }],
  ]
  const { results, stats } = await burst(sql, appends)
  t.same(stats, { batches: 2, appends: 5, fallbacks: 1, largest: 4, waiting: 0 }, 'one batch, refused whole, then run one by one')
  t.match(results, [{ firstVersion: 1, lastVersion: 1 }, 'validation-failed', { firstVersion: 2, lastVersion: 3 }, 'wrong-expected-version'])
  await checkStored(t, sql, appends, results)
  await t.rejects(readStream(sql, 'default', other, {}), { code: 'stream-not-found' })
})

// The embedded database runs one transaction at a time: nothing can race a batch there.
const ONE_SESSION = EMBEDDED && 'the embedded database never runs two transactions at once'

t.test('a batch that loses a race on an event id to another transaction runs again one by one, each append with its true outcome', { skip: ONE_SESSION }, async (t) => {
  const { sql } = await testDatabase(t)
  const racer = withId(event('Raced'))
  const side = await sql.reserve()
  t.teardown(() => side.release())
  await side`begin`
  await side`select * from append_events('default', ${streamId()}, 'any', null, ${JSON.stringify([racer])}::text::json)`
  const appends: Append[] = [
    ['default', streamId(), { events: events(1) }],
    ['default', streamId(), { events: [racer] }],
    ['default', streamId(), { expectedVersion: 'no_stream', events: events(2) }],
  ]
  const running = burst(sql, appends)
  // the batch waits on the unique index for the open transaction's event id
  await waitFor('the batch to wait for the open transaction', async () => {
    const [row] = await sql<{ waiting: number }[]>`
      select count(*)::int as waiting from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`
    return row!.waiting > 0
  })
  await side`commit`
  const { results, stats } = await running
  t.same(stats, { batches: 2, appends: 4, fallbacks: 1, largest: 3, waiting: 0 })
  t.match(results, [{ firstVersion: 1, lastVersion: 1 }, 'duplicate-event-id', { firstVersion: 1, lastVersion: 2 }])
  await checkStored(t, sql, appends, results)
})

t.test('two instances batching over the same streams in opposite orders never deadlock', { skip: EMBEDDED && 'one instance only on the embedded database' }, async (t) => {
  const db = await testDatabase(t)
  const second = connect(db.url!, { max: 4 })
  t.teardown(() => second.end({ timeout: 1 }))
  const ids = Array.from({ length: 6 }, () => streamId())
  const instances = [db.sql, second]
  const acks = await Promise.all(
    instances.flatMap((sql, instance) =>
      Array.from({ length: 20 }, async (_, round) => {
        // every round a burst over all streams, one instance in order and the other in reverse
        const order = instance === 0 ? ids : [...ids].reverse()
        return Promise.all(order.map((id) => appendEvents(sql, 'default', id, { events: events(1 + (round % 2)) })))
      }),
    ),
  )
  for (const sql of instances) {
    const stats = appendBatchStats(sql)
    t.equal(stats.fallbacks, 0, 'no batch was refused (a deadlock would have been)')
    t.ok(stats.largest > 1, `batches held up to ${stats.largest} appends`)
  }
  for (const id of ids) {
    const written = acks.flat().filter((ack) => ack.streamId === id)
    const page = await readStream(db.sql, 'default', id, { limit: 1000 })
    const total = written.reduce((sum, ack) => sum + ack.lastVersion - ack.firstVersion + 1, 0)
    t.same(page.events.map((stored) => stored.streamVersion), Array.from({ length: total }, (_, index) => index + 1), `${id}: contiguous`)
  }
})

t.test('a batch waiting on a stream lock holds up only that stream\'s appends', { skip: ONE_SESSION }, async (t) => {
  const { sql } = await testDatabase(t)
  const locked = streamId()
  await appendEvents(sql, 'default', locked, { events: events(1) })
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  let holding = false
  const holder = sql.begin(async (tx) => {
    await tx`select version from streams where tenant = 'default' and stream_id = ${locked} for update`
    holding = true
    await held
  })
  await waitFor('the stream lock to be held', () => holding)
  const blocked = appendEvents(sql, 'default', locked, { expectedVersion: 1, events: events(1) })
  const behind = appendEvents(sql, 'default', locked, { expectedVersion: 2, events: events(1) })
  t.match(await appendEvents(sql, 'default', streamId(), { events: events(1) }), { firstVersion: 1 }, 'another stream appends meanwhile')
  t.equal(appendBatchStats(sql).waiting, 1, 'the second append to the locked stream waits for the first')
  release()
  await holder
  t.match(await blocked, { firstVersion: 2 })
  t.match(await behind, { firstVersion: 3 }, 'in arrival order')
})
