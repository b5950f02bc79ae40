import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { groupApi } from '../helpers/group-api.js'
import { waitFor } from '../helpers/wait-for.js'

t.test('poll leases events in stream order, one stream to one poll at a time, and ack ends the lease', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-a', 3)
  await api.append('order-b', 2)
  await api.put('g')

  const first = await api.poll('g', '?max=2')
  t.same(first.map((event) => [event.streamId, event.streamVersion]), [['order-a', 1], ['order-a', 2]], 'a run of consecutive events of the oldest stream')
  t.equal(first[0]!.delivery.attempt, 1)
  t.ok(Date.parse(first[0]!.delivery.deadline) > Date.now(), 'the deadline is in the future')
  t.same(first[0]!.data, { index: 0 }, 'a stored event, as every read returns it')

  const second = await api.poll('g', '?max=10')
  t.same(second.map((event) => [event.streamId, event.streamVersion]), [['order-b', 1], ['order-b', 2]], 'order-a is leased: its third event waits')
  t.same(await api.poll('g', '?max=10'), [], 'nothing more can go out')

  t.same(await api.ack('g', [first[1]!.eventId]), { acked: 1, ignored: 0 }, 'an ack out of order within a lease is taken')
  t.same(await api.poll('g', '?max=10'), [], 'the stream stays leased while its first event is not acked')
  t.same(await api.ack('g', [first[0]!.eventId, first[0]!.eventId, second[0]!.eventId]), { acked: 2, ignored: 0 }, 'the same id twice counts once')
  const third = await api.poll('g', '?max=10')
  t.same(third.map((event) => [event.streamId, event.streamVersion]), [['order-a', 3]])
  t.same(await api.ack('g', [first[0]!.eventId, third[0]!.eventId]), { acked: 1, ignored: 1 }, 'an acked event is not leased: ignored')
  t.same(await api.ack('g', [second[1]!.eventId]), { acked: 1, ignored: 0 })
  t.same(await api.poll('g', '?max=10'), [], 'an acked event is never handed out again')
  t.match(await api.status('g'), { position: second[1]!.globalPosition, lag: 0, inFlight: 0, delivered: 5, acked: 5, parked: 0 })
})

t.test('nack hands events out again after retryAfterMs, with the events after them in the stream', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-a', 3)
  await api.put('g')
  const leased = await api.poll('g', '?max=3')
  t.same(await api.nack('g', { eventIds: [leased[1]!.eventId], retryAfterMs: 300, error: 'downstream unavailable' }), { nacked: 1, ignored: 0 })
  t.same(await api.ack('g', [leased[2]!.eventId]), { acked: 0, ignored: 1 }, 'events after the nacked one are no longer leased')
  t.same(await api.ack('g', [leased[0]!.eventId]), { acked: 1, ignored: 0 }, 'the one before it still is')
  t.same(await api.poll('g', '?max=3'), [], 'not before retryAfterMs')
  const again = await waitFor('the nacked event to come back', async () => {
    const events = await api.poll('g', '?max=3')
    return events.length > 0 ? events : undefined
  })
  t.same(again.map((event) => [event.streamVersion, event.delivery.attempt]), [[2, 2], [3, 2]], 'in order, each a second attempt')
})

t.test('an expired lease counts as a nack with no delay; an ack after it is ignored', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-a', 1)
  await api.put('g', { ackTimeoutMs: 1000 })
  const [first] = await api.poll('g')
  const [again] = await api.poll('g', '?waitMs=5000')
  t.equal(again?.eventId, first!.eventId, 'a waiting poll gets it once the lease expires')
  t.equal(again?.delivery.attempt, 2)
  t.ok(Date.now() >= Date.parse(first!.delivery.deadline), 'not before the first deadline')
  t.same(await api.ack('g', [first!.eventId]), { acked: 1, ignored: 0 }, 'the new lease holds it; one ack settles it')
  t.same(await api.ack('g', [first!.eventId]), { acked: 0, ignored: 1 })
})

t.test('attempts count every delivery, ended by an expiry or a nack; the maxDeliveries-th parks', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-a', 2)
  await api.put('g', { maxDeliveries: 4, ackTimeoutMs: 1000 })
  const versionsAndAttempts = (events: { streamVersion: number; delivery: { attempt: number } }[]) => events.map((event) => [event.streamVersion, event.delivery.attempt])
  const first = await api.poll('g', '?max=2')
  t.same(versionsAndAttempts(first), [[1, 1], [2, 1]])
  const expired = await api.poll('g', '?max=2&waitMs=5000')
  t.same(versionsAndAttempts(expired), [[1, 2], [2, 2]], 'an expired lease counts for every event in it')
  t.same(await api.nack('g', { eventIds: [expired[0]!.eventId] }), { nacked: 1, ignored: 0 })
  const nacked = await api.poll('g', '?max=2')
  t.same(versionsAndAttempts(nacked), [[1, 3], [2, 3]], 'a nack counts for the nacked event and the later ones it released')
  const expiredAgain = await api.poll('g', '?max=2&waitMs=5000')
  t.same(versionsAndAttempts(expiredAgain), [[1, 4], [2, 4]])
  t.same(await api.nack('g', { eventIds: [expiredAgain[0]!.eventId], error: 'still broken' }), { nacked: 1, ignored: 0 })
  t.same(await api.poll('g', '?max=2'), [], 'both had maxDeliveries deliveries: the nacked one parked at once, the other on the next poll')
  const parked = (await api.call('GET', '/consumer-groups/g/parked')).json()
  t.match(parked.events, [{ streamVersion: 1, attempts: 4, lastError: 'still broken' }, { streamVersion: 2, attempts: 4 }])
  t.match(await api.status('g'), { parked: 2, inFlight: 0, delivered: 8, acked: 0, lag: 0 })
})

t.test('a long poll answers as soon as a matching event is appended, and with [] after waitMs', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.put('g', { source: { types: ['Wanted'] } })
  const started = Date.now()
  t.same(await api.poll('g', '?waitMs=300'), [])
  t.ok(Date.now() - started >= 290, 'waited waitMs')
  const polled = api.poll('g', '?waitMs=10000')
  await api.append('order-a', 1, 'Unwanted')
  await api.append('order-a', 1, 'Wanted')
  const begun = Date.now()
  const events = await polled
  t.same(events.map((event) => [event.type, event.streamVersion]), [['Wanted', 2]], 'only the source\'s events')
  t.ok(Date.now() - begun < 2000, 'answered long before waitMs')
})

t.test('sources: types, categories and streamIdPrefix; only the group\'s tenant', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-1', 1, 'A')
  await api.append('invoice-1', 1, 'B')
  await api.append('orderly-1', 1, 'A')
  await app.inject({ method: 'POST', url: '/streams/order-9/events', headers: { 'x-tenant-id': 'other' }, payload: { events: [{ type: 'A', data: {} }] } })
  await api.put('types', { source: { types: ['A'] } })
  await api.put('cats', { source: { categories: ['invoice', 'orderly'] } })
  await api.put('prefix', { source: { streamIdPrefix: 'order-' } })
  const streams = async (name: string) => (await api.poll(name, '?max=10')).map((event) => event.streamId)
  t.same(await streams('types'), ['order-1', 'orderly-1'])
  t.same(await streams('cats'), ['invoice-1', 'orderly-1'])
  t.same(await streams('prefix'), ['order-1'])
})

t.test('data and metadata come back exactly as sent', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  const raw = '{"events":[{"type":"Exact","data":{"big":12345678901234567890123,"__proto__":{"x":1.50}},"metadata":{"z":1,"a":2}}]}'
  await app.inject({ method: 'POST', url: '/streams/order-1/events', headers: { 'content-type': 'application/json' }, payload: raw })
  await api.put('g')
  const body = (await api.call('POST', '/consumer-groups/g/poll')).body
  t.match(body, '"data":{"big":12345678901234567890123,"__proto__":{"x":1.50}}')
  t.match(body, '"metadata":{"z":1,"a":2}')
})

t.test('parking: a poison event is parked after maxDeliveries, its stream goes on, replay brings it back', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-a', 3)
  await api.put('g', { maxDeliveries: 2 })
  const [poison] = await api.poll('g', '?max=1')
  t.same(await api.nack('g', { eventIds: [poison!.eventId], error: 'first failure' }), { nacked: 1, ignored: 0 })
  const [second] = await api.poll('g', '?max=1')
  t.equal(second!.eventId, poison!.eventId)
  t.same(await api.nack('g', { eventIds: [poison!.eventId], error: 'cannot parse' }), { nacked: 1, ignored: 0 })
  const rest = await api.poll('g', '?max=10')
  t.same(rest.map((event) => event.streamVersion), [2, 3], 'the stream goes on past the parked event')
  await api.ack('g', rest.map((event) => event.eventId))
  t.match(await api.status('g'), { parked: 1, lag: 0, acked: 2, delivered: 4 }, 'parked counts as done for position')

  const parked = (await api.call('GET', '/consumer-groups/g/parked')).json()
  t.match(parked, { events: [{ eventId: poison!.eventId, streamVersion: 1, data: { index: 0 }, attempts: 2, lastError: 'cannot parse' }], next: null })
  t.ok(Date.parse(parked.events[0].parkedAt))
  t.same((await api.call('GET', `/consumer-groups/g/parked?after=${poison!.globalPosition}`)).json(), { events: [], next: null })

  t.same((await api.call('POST', '/consumer-groups/g/parked/replay')).json(), { replayed: 1 }, 'no body replays all')
  t.same((await api.call('GET', '/consumer-groups/g/parked')).json().events, [])
  const [replayed] = await api.poll('g')
  t.equal(replayed!.eventId, poison!.eventId)
  t.equal(replayed!.delivery.attempt, 1, 'attempts reset')
  t.ok((await api.status('g')).lag > 0, 'a replayed event holds the position again')
  t.same(await api.ack('g', [replayed!.eventId]), { acked: 1, ignored: 0 })
  t.same((await api.call('POST', '/consumer-groups/g/parked/replay', { eventIds: [poison!.eventId] })).json(), { replayed: 0 })
})

t.test('an expired lease of the last delivery parks the event; DELETE …/parked/{eventId} drops it', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-a', 2)
  await api.put('g', { maxDeliveries: 1, ackTimeoutMs: 1000 })
  const [first] = await api.poll('g', '?max=1')
  const [next] = await api.poll('g', '?max=1&waitMs=5000')
  t.equal(next?.streamVersion, 2, 'once the lease expired the event is parked and its stream goes on')
  const parked = (await api.call('GET', '/consumer-groups/g/parked')).json()
  t.match(parked.events, [{ eventId: first!.eventId, attempts: 1, lastError: 'the lease expired' }])
  const missing = await api.call('DELETE', `/consumer-groups/g/parked/${next!.eventId}`)
  t.equal(missing.statusCode, 404, 'an event that is not parked')
  t.equal(missing.json().code, 'not-found')
  t.equal((await api.call('DELETE', `/consumer-groups/g/parked/${first!.eventId}`)).statusCode, 204)
  t.same((await api.call('GET', '/consumer-groups/g/parked')).json().events, [])
  t.equal((await api.status('g')).parked, 0)
})

t.test('the parked list pages with after, limit and next', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  for (let stream = 0; stream < 3; stream++) await api.append(`order-${stream}`, 1)
  await api.put('g', { maxDeliveries: 1 })
  const leased = await api.poll('g', '?max=10')
  await api.nack('g', { eventIds: leased.map((event) => event.eventId) })
  const page = (await api.call('GET', '/consumer-groups/g/parked?limit=2')).json()
  t.equal(page.events.length, 2)
  t.equal(page.next, page.events[1].globalPosition)
  const last = (await api.call('GET', `/consumer-groups/g/parked?limit=2&after=${page.next}`)).json()
  t.same(last.events.map((event: { globalPosition: number }) => event.globalPosition), [leased[2]!.globalPosition])
  t.equal(last.next, null)
})

// A parked event inside a lease that was not its own: order-a's first event is parked and replayed, so it has fewer
// deliveries than the second; the second is parked on its last delivery (polls of one event: the third is never
// delivered), and the next lease runs from the first event to the third, around the parked second one. Answers that
// lease.
const leaseAroundParked = async (api: ReturnType<typeof groupApi>) => {
  await api.append('order-a', 3)
  await api.put('g', { maxDeliveries: 2, ackTimeoutMs: 1000 })
  const deliverAndNack = async (streamVersion: number) => {
    const [event] = await api.poll('g', '?max=1')
    if (event?.streamVersion !== streamVersion) throw new Error(`expected version ${streamVersion}, got ${JSON.stringify(event)}`)
    await api.nack('g', { eventIds: [event.eventId] })
    return event
  }
  const first = await deliverAndNack(1)
  await deliverAndNack(1)
  await deliverAndNack(2)
  const [second] = await api.poll('g', '?max=1')
  await api.call('POST', '/consumer-groups/g/parked/replay', { eventIds: [first.eventId] })
  await api.nack('g', { eventIds: [second!.eventId], error: 'last allowed delivery' })
  const around = await api.poll('g', '?max=10')
  return { second: second!, around }
}

t.test('a parked event replayed inside a lease that was not its own has maxDeliveries deliveries, the first at once once that lease is acked', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  const { second, around } = await leaseAroundParked(api)
  t.same(around.map((event) => [event.streamVersion, event.delivery.attempt]), [[1, 1], [3, 1]], 'the lease runs around the parked event')
  t.same((await api.call('POST', '/consumer-groups/g/parked/replay', { eventIds: [second.eventId] })).json(), { replayed: 1 })
  t.equal((await api.status('g')).inFlight, 2, 'the replayed event is not in flight')
  t.same(await api.ack('g', [second.eventId]), { acked: 0, ignored: 1 }, 'nor leased: an ack of it is ignored')
  t.same(await api.ack('g', around.map((event) => event.eventId)), { acked: 2, ignored: 0 })
  const [replayed] = await api.poll('g')
  t.same([replayed?.eventId, replayed?.delivery.attempt], [second.eventId, 1], 'it goes out as soon as the lease around it is acked, on its first delivery since the replay')
  const attempts: number[] = []
  const parked = await waitFor('the replayed event to be parked again', async () => {
    for (const event of await api.poll('g', '?max=10')) attempts.push(event.delivery.attempt)
    const { events } = (await api.call('GET', '/consumer-groups/g/parked')).json()
    return events.length > 0 ? events : undefined
  })
  t.same(attempts, [2], 'one more delivery after the first expired')
  t.match(parked, [{ eventId: second.eventId, attempts: 2, lastError: 'the lease expired' }], 'parked after maxDeliveries deliveries')
})

t.test('a parked event replayed inside a lease that was not its own and expires is delivered as a first attempt; no event goes out past maxDeliveries', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  const { second, around } = await leaseAroundParked(api)
  await api.call('POST', '/consumer-groups/g/parked/replay', { eventIds: [second.eventId] })
  const again = await api.poll('g', '?max=10&waitMs=5000')
  t.same(again.map((event) => [event.streamVersion, event.delivery.attempt]), [[1, 2], [2, 1], [3, 2]], 'the expired lease counts for its own events only')
  t.ok(Date.now() >= Date.parse(around[0]!.delivery.deadline), 'after that lease expired')
  t.same(await api.nack('g', { eventIds: [again[0]!.eventId] }), { nacked: 1, ignored: 0 })
  const parkedVersions = async () => (await api.call('GET', '/consumer-groups/g/parked')).json().events.map((event: { streamVersion: number; attempts: number }) => [event.streamVersion, event.attempts])
  t.same(await parkedVersions(), [[1, 2]], 'the first event had its two deliveries')
  const next = await api.poll('g', '?max=10')
  t.same(next.map((event) => [event.streamVersion, event.delivery.attempt]), [[2, 2]], 'the replayed event had one; the third had two and is not delivered again')
  t.same(await api.ack('g', [second.eventId]), { acked: 1, ignored: 0 })
  t.same(await api.poll('g', '?max=10'), [], 'the third event, now its stream\'s first, is parked')
  t.same(await parkedVersions(), [[1, 2], [3, 2]])
})

t.test('a nack that leaves only a replayed event inside its lease ends that lease, which did not deliver it', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  const { second, around } = await leaseAroundParked(api)
  await api.call('POST', '/consumer-groups/g/parked/replay', { eventIds: [second.eventId] })
  t.same(await api.ack('g', [around[0]!.eventId]), { acked: 1, ignored: 0 })
  t.same(await api.nack('g', { eventIds: [around[1]!.eventId] }), { nacked: 1, ignored: 0 })
  const next = await api.poll('g', '?max=10')
  t.same(next.map((event) => [event.streamVersion, event.delivery.attempt]), [[2, 1], [3, 2]], 'both go out at once, the replayed event on its first delivery')
})
