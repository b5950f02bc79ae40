import t from 'tap'
import { appendEvents, type AppendInput } from '../../src/events/append.js'
import { appendToStreams, type StreamAppendInput } from '../../src/events/append-to-streams.js'
import { appendBatchStats, type AppendBatchStats } from '../../src/events/append-batcher.js'
import { readStream } from '../../src/events/read-stream.js'
import { connect, type Sql } from '../../src/db/connect.js'
import type { AppendResult, AppendsResult } from '../../src/events/schemas.js'
import { Problem } from '../../src/problems.js'
import { event, events, streamId, withId } from '../helpers/fixtures.js'
import { EMBEDDED, testDatabase } from '../helpers/test-database.js'

// A single append, or a request of several streams (POST /appends).
type Request = [streamId: string, request: AppendInput] | StreamAppendInput[]

const send = (sql: Sql, request: Request): Promise<AppendResult | AppendsResult> =>
  typeof request[0] === 'string'
    ? appendEvents(sql, 'default', request[0], request[1] as AppendInput)
    : appendToStreams(sql, 'default', { appends: request as StreamAppendInput[] })

const outcome = (settled: PromiseSettledResult<AppendResult | AppendsResult>): unknown => {
  if (settled.status === 'fulfilled') return settled.value
  if (!(settled.reason instanceof Problem)) return String(settled.reason)
  const problem = settled.reason
  return problem.extra.conflicts ? { code: problem.code, conflicts: problem.extra.conflicts } : problem.code
}

// As in append-batcher.test.ts: a lead goes out alone, so every request made meanwhile waits for the next batch.
const burst = async (sql: Sql, requests: Request[]): Promise<{ results: unknown[]; stats: Omit<AppendBatchStats, 'waiting'> }> => {
  const before = appendBatchStats(sql)
  const lead = appendEvents(sql, 'default', streamId('lead'), { events: events(1) })
  const settled = await Promise.allSettled(requests.map((request) => send(sql, request)))
  await lead
  const after = appendBatchStats(sql)
  return {
    results: settled.map(outcome),
    stats: { batches: after.batches - before.batches, appends: after.appends - before.appends, fallbacks: after.fallbacks - before.fallbacks, largest: after.largest },
  }
}

const versions = async (sql: Sql, ids: string[]): Promise<number[]> =>
  Promise.all(ids.map(async (id) => (await readStream(sql, 'default', id, {}).catch(() => ({ version: 0 }))).version))

t.test('requests of several streams share a batch with single appends; a refused one fails alone and writes nothing', async (t) => {
  const { sql } = await testDatabase(t)
  const [s1, s2, s3, s4] = [streamId(), streamId(), streamId(), streamId()]
  const { results, stats } = await burst(sql, [
    [s1, { expectedVersion: 0, events: events(1) }],
    // sees the single append before it, as it would in sequence
    [{ streamId: s1, expectedVersion: 1, events: events(2) }, { streamId: s2, expectedVersion: 'no_stream', events: events(1) }],
    [{ streamId: s3, events: events(1) }, { streamId: s2, expectedVersion: 0, events: events(1) }, { streamId: s4, expectedVersion: 'exists', events: events(1) }],
    [s3, { expectedVersion: 'no_stream', events: events(1) }],
    [{ streamId: s4, expectedVersion: 'no_stream', events: events(1) }, { streamId: s1, expectedVersion: 3, events: events(1) }],
  ])
  t.same(stats, { batches: 2, appends: 6, fallbacks: 0, largest: 5 }, 'the lead alone, then one batch of five requests')
  t.match(results, [
    { streamId: s1, firstVersion: 1, lastVersion: 1 },
    { appends: [{ streamId: s1, firstVersion: 2, lastVersion: 3 }, { streamId: s2, firstVersion: 1, lastVersion: 1 }] },
    { code: 'wrong-expected-version', conflicts: [{ streamId: s2, expectedVersion: 0, currentVersion: 1 }, { streamId: s4, expectedVersion: 'exists', currentVersion: 0 }] },
    { streamId: s3, firstVersion: 1, lastVersion: 1 },
    { appends: [{ streamId: s4, firstVersion: 1, lastVersion: 1 }, { streamId: s1, firstVersion: 4, lastVersion: 4 }] },
  ])
  t.same(await versions(sql, [s1, s2, s3, s4]), [4, 1, 1, 1], 'the refused request wrote nothing, even to s3 which it expected nothing of')
  const written = [results[0], ...(results[1] as AppendsResult).appends, results[3], ...(results[4] as AppendsResult).appends] as AppendResult[]
  const positions = written.flatMap((run) => [run.firstPosition, run.lastPosition])
  t.same(positions, [...positions].sort((x, y) => x - y), 'positions follow arrival order, and request order within a request')
  t.same(await sql`select stream_id from streams where version = 0`, [], 'no stream row is left at version 0')
})

t.test('idempotent retries of a request: inside one batch and across batches', async (t) => {
  const { sql } = await testDatabase(t)
  const [a, b, c, d] = [streamId(), streamId(), streamId(), streamId()]
  const stored: StreamAppendInput[] = [{ streamId: a, expectedVersion: 0, events: [withId(event()), withId(event())] }, { streamId: b, events: [withId(event())] }]
  const original = await appendToStreams(sql, 'default', { appends: stored })
  const fresh: StreamAppendInput[] = [{ streamId: c, expectedVersion: 'no_stream', events: [withId(event())] }, { streamId: d, events: [withId(event())] }]
  const { results, stats } = await burst(sql, [
    // a retry of a committed request, whatever it now expects, batched with others
    stored.map((entry) => ({ ...entry, expectedVersion: 7 })),
    [a, { events: events(1) }],
    [stored[1]!, stored[0]!],
    fresh,
    // a copy of a request of this very burst: it waits for the next batch and finds that one stored
    fresh,
    [{ streamId: d, events: [fresh[1]!.events[0]!, withId(event())] }],
  ])
  t.same(results[0], { ...original, duplicate: true })
  t.match(results[1], { streamId: a, firstVersion: 3 })
  t.equal(results[2], 'duplicate-event-id', 'the same runs in another order are not a retry')
  t.match(results[3], { appends: [{ streamId: c, firstVersion: 1 }, { streamId: d, firstVersion: 1 }] })
  t.notOk((results[3] as AppendsResult).duplicate)
  t.same(results[4], { ...(results[3] as AppendsResult), duplicate: true })
  t.equal(results[5], 'duplicate-event-id', 'partly stored')
  // the lead; [0, 1, 3]; [2, 4] (each repeats ids of one taken before); [5] (repeats an id of 4)
  t.same(stats, { batches: 4, appends: 7, fallbacks: 0, largest: 3 }, 'copies go in the batch after the original')
  t.same(await appendToStreams(sql, 'default', { appends: fresh }), { ...(results[3] as AppendsResult), duplicate: true }, 'and a retry in a later batch too')
  t.same(await versions(sql, [a, b, c, d]), [3, 1, 1, 1])
})

t.test('a batch the database refuses whole runs its requests again one by one, a request of several streams whole', async (t) => {
  const { sql } = await testDatabase(t)
  const [a, b, c] = [streamId(), streamId(), streamId()]
  const { results, stats } = await burst(sql, [
    [{ streamId: a, events: events(1) }, { streamId: b, events: events(2) }],
    // not a uuid: the route would refuse it; here the database does
    [c, { events: [event('Bad', {}, { eventId: 'not-a-uuid' })] }],
    [{ streamId: b, expectedVersion: 1, events: events(1) }, { streamId: c, events: events(1) }],
    [{ streamId: b, expectedVersion: 2, events: events(1) }, { streamId: a, expectedVersion: 1, events: events(1) }],
  ])
  t.same(stats, { batches: 2, appends: 5, fallbacks: 1, largest: 4 })
  t.match(results, [
    { appends: [{ streamId: a, firstVersion: 1 }, { streamId: b, firstVersion: 1, lastVersion: 2 }] },
    'validation-failed',
    { code: 'wrong-expected-version', conflicts: [{ streamId: b, expectedVersion: 1, currentVersion: 2 }] },
    { appends: [{ streamId: b, firstVersion: 3 }, { streamId: a, firstVersion: 2 }] },
  ])
  t.same(await versions(sql, [a, b, c]), [2, 3, 0])
})

t.test('inside a caller\'s transaction a request is part of it', async (t) => {
  const { sql } = await testDatabase(t)
  const [a, b] = [streamId(), streamId()]
  await t.rejects(sql.begin(async (tx) => {
    const result = await appendToStreams(tx as unknown as Sql, 'default', { appends: [{ streamId: a, events: events(1) }, { streamId: b, events: events(1) }] })
    t.match(result, { appends: [{ streamId: a, firstVersion: 1 }, { streamId: b, firstVersion: 1 }] })
    throw new Error('roll back')
  }), /roll back/)
  t.same(await versions(sql, [a, b]), [0, 0], 'rolled back with it')
})

t.test('two instances writing each other\'s event ids in opposite orders: one request wins, the other is refused, never a 5xx or a conflict', { skip: EMBEDDED && 'one instance only on the embedded database' }, async (t) => {
  const db = await testDatabase(t)
  const second = connect(db.url!, { max: 4 })
  t.teardown(() => second.end({ timeout: 1 }))
  const outcomes: unknown[] = []
  for (let round = 0; round < 30; round++) {
    const [x, y] = [withId(event()), withId(event())]
    const settled = await Promise.allSettled([
      appendToStreams(db.sql, 'default', { appends: [{ streamId: streamId(), events: [x, withId(event())] }, { streamId: streamId(), events: [y] }] }),
      appendToStreams(second, 'default', { appends: [{ streamId: streamId(), events: [y, withId(event())] }, { streamId: streamId(), events: [x] }] }),
    ])
    outcomes.push(settled.map(outcome).map((result) => (typeof result === 'string' ? result : 'written')).sort().join(' '))
  }
  t.same(outcomes.filter((result) => result !== 'duplicate-event-id written'), [], 'every round: one written, one duplicate-event-id')
})
