import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { event, events, streamId } from '../helpers/fixtures.js'

const { app, db } = await buildTestApp(t, { SNAPSHOT_KEEP: '5', SNAPSHOT_EVERY: '3' })

const append = (id: string, body: object) => app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body })
const put = (id: string, version: number, state: unknown) =>
  app.inject({ method: 'PUT', url: `/streams/${id}/snapshots/${version}`, payload: { state } })
const get = (url: string) => app.inject({ url })

interface Loaded {
  streamId: string
  version: number
  snapshot: { version: number; state: unknown } | null
  events: { streamVersion: number; type: string; data: Record<string, unknown> }[]
  snapshotDue: boolean
}
const load = async (id: string, query = ''): Promise<Loaded> => {
  const res = await get(`/streams/${id}/load${query}`)
  t.equal(res.statusCode, 200, `load ${query}`)
  return res.json()
}
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, index) => from + index)
const versionsOf = (loaded: Loaded): number[] => loaded.events.map((e) => e.streamVersion)

t.test('load returns the closest snapshot at or before the target and every event after it', async (t) => {
  const id = streamId()
  await append(id, { events: events(10) })

  const bare = await load(id)
  t.match(bare, { streamId: id, version: 10, snapshot: null, snapshotDue: true })
  t.same(versionsOf(bare), range(1, 10), 'no snapshot: every event from version 1')

  await put(id, 4, { upTo: 4 })
  const fromFour = await load(id)
  t.match(fromFour, { version: 10, snapshot: { version: 4, state: { upTo: 4 } }, snapshotDue: true })
  t.same(versionsOf(fromFour), range(5, 10), 'only the tail after the snapshot')

  await put(id, 9, { upTo: 9 })
  const fromNine = await load(id)
  t.match(fromNine, { version: 10, snapshot: { version: 9 }, snapshotDue: false })
  t.same(versionsOf(fromNine), [10])

  await put(id, 10, { upTo: 10 })
  t.match(await load(id), { version: 10, snapshot: { version: 10 }, events: [], snapshotDue: false }, 'a snapshot at the head leaves nothing to replay')
})

t.test('untilVersion loads the stream as it was at that version', async (t) => {
  const id = streamId()
  await append(id, { events: events(10) })
  await put(id, 4, { upTo: 4 })
  await put(id, 9, { upTo: 9 })
  const six = await load(id, '?untilVersion=6')
  t.match(six, { version: 6, snapshot: { version: 4 }, snapshotDue: false })
  t.same(versionsOf(six), [5, 6])
  const seven = await load(id, '?untilVersion=7')
  t.match(seven, { version: 7, snapshotDue: true }, 'three events after the snapshot: SNAPSHOT_EVERY is reached')
  const three = await load(id, '?untilVersion=3')
  t.match(three, { version: 3, snapshot: null, snapshotDue: true }, 'a snapshot above the target is never used')
  t.same(versionsOf(three), [1, 2, 3])
  const two = await load(id, '?untilVersion=2')
  t.equal(two.snapshotDue, false, 'two events, below SNAPSHOT_EVERY')
  t.same(versionsOf(await load(id, '?untilVersion=9')), [], 'exactly at a snapshot')
  t.match(await load(id, '?untilVersion=500'), { version: 10, snapshot: { version: 9 } }, 'past the end is the stream as it is')
  for (const query of ['?untilVersion=0', '?untilVersion=-1', '?untilVersion=x', '?until=yesterday']) {
    t.equal((await get(`/streams/${id}/load${query}`)).statusCode, 400, query)
  }
})

t.test('a stream with no events (or none yet at the target time) is 404 stream-not-found', async (t) => {
  const missing = await get(`/streams/${streamId()}/load`)
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'stream-not-found')
  const id = streamId()
  await append(id, { events: events(1) })
  const early = await get(`/streams/${id}/load?until=2000-01-01T00:00:00Z`)
  t.equal(early.statusCode, 404)
  t.equal(early.json().code, 'stream-not-found')
  t.equal((await get(`/streams/${streamId()}/load?untilVersion=3`)).statusCode, 404, 'untilVersion does not make a stream exist')
})

t.test('what was the order status yesterday: until reads and loads the stream as it was then', async (t) => {
  const id = streamId()
  await append(id, {
    events: [event('OrderPlaced', { status: 'placed' }), event('OrderPaid', { status: 'paid' }), event('OrderShipped', { status: 'shipped' }), event('OrderDelivered', { status: 'delivered' })],
  })
  // the first two happened yesterday (the test owns its database and dates them back; created_at stays ordered in the stream)
  await db.sql`
    update events
       set created_at = date_trunc('day', now()) - interval '1 day' + (stream_version || ' hours')::interval
     where stream_id = ${id}
       and stream_version <= 2`
  const yesterdayEvening = new Date(new Date().setUTCHours(0, 0, 0, 0) - 60_000).toISOString()
  const yesterdayOneThirty = new Date(new Date().setUTCHours(0, 0, 0, 0) - 22.5 * 3_600_000).toISOString()
  const statusOf = (loaded: Loaded): unknown => loaded.events.at(-1)?.data.status ?? (loaded.snapshot?.state as { status: string }).status

  const read = (await get(`/streams/${id}/events?until=${yesterdayEvening}`)).json()
  t.equal(read.version, 2)
  t.same(read.events.map((e: { type: string }) => e.type), ['OrderPlaced', 'OrderPaid'])
  t.equal(statusOf(await load(id, `?until=${yesterdayEvening}`)), 'paid', 'yesterday evening the order was paid')
  t.equal(statusOf(await load(id, `?until=${yesterdayOneThirty}`)), 'placed', 'yesterday at 01:30 it was only placed')
  t.equal(statusOf(await load(id)), 'delivered', 'today it is delivered')

  await put(id, 1, { status: 'placed' })
  await put(id, 3, { status: 'shipped' })
  const withSnapshots = await load(id, `?until=${yesterdayEvening}`)
  t.match(withSnapshots, { version: 2, snapshot: { version: 1 } }, 'a snapshot taken today still serves yesterday, when its version is old enough')
  t.same(versionsOf(withSnapshots), [2])
  t.equal(statusOf(withSnapshots), 'paid')
  t.match(await load(id, `?until=${yesterdayEvening}&untilVersion=1`), { version: 1, events: [], snapshot: { version: 1 } }, 'until and untilVersion: the earlier wins')
})
