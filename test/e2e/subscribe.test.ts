import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Client } from 'undici'
import { buildTestApp } from '../helpers/test-app.js'
import { event, events, streamId } from '../helpers/fixtures.js'
import { SseClient } from '../helpers/sse-client.js'
import { waitFor } from '../helpers/wait-for.js'

// GET /subscribe over a real socket (SPEC "Subscribe").
const { app, services, db } = await buildTestApp(t, { SUBSCRIBE_HEARTBEAT_MS: '50' })
await app.listen({ port: 0, host: '127.0.0.1' })
const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
const { liveFeed } = services

const append = async (id: string, body: object, tenant?: string): Promise<{ firstPosition: number; lastPosition: number }> => {
  const res = await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body, headers: tenant ? { 'x-tenant-id': tenant } : {} })
  if (res.statusCode !== 201) throw new Error(`append answered ${res.statusCode}: ${res.body}`)
  return res.json()
}
const subscribe = async (t: Test, path = '/subscribe', headers: Record<string, string> = {}): Promise<SseClient> => {
  const client = await SseClient.open(origin, path, headers)
  t.teardown(() => client.close())
  return client
}
// one request on a connection of its own, closed after the answer
const probe = async (path: string, headers: Record<string, string>) => {
  const connection = new Client(origin)
  t.teardown(() => connection.destroy())
  return connection.request({ method: 'GET', path, headers })
}
const positions = (client: SseClient): number[] => client.events.map((e) => e.globalPosition)

t.test('replays, then streams each new event live within 1 s of its append', async (t) => {
  const id = streamId()
  const first = await append(id, { events: events(3) })
  const client = await subscribe(t, `/subscribe?streamId=${id}`, { 'x-request-id': 'sse-req-1' })
  t.equal(client.status, 200)
  t.match(client.headers['content-type'], /^text\/event-stream/)
  t.equal(client.headers['cache-control'], 'no-cache')
  t.equal(client.headers['x-request-id'], 'sse-req-1')
  const replayed = await client.waitForCount(3)
  t.same(replayed.map((e) => e.streamVersion), [1, 2, 3])
  t.equal(replayed[0]!.globalPosition, first.firstPosition)

  for (let round = 0; round < 5; round++) {
    const acknowledged = performance.now()
    const { lastPosition } = await append(id, { events: [event('ItemAdded', { round })] })
    const received = await waitFor('the live event', () => client.messages.find((m) => m.id === String(lastPosition)), { timeoutMs: 2000, intervalMs: 1 })
    t.ok(received.receivedAt - acknowledged < 1000, `round ${round}: delivered ${Math.round(received.receivedAt - acknowledged)} ms after the append was sent`)
  }
  const message = client.messages.at(-1)!
  t.equal(message.event, 'ItemAdded', 'event: is the type')
  const stored = (await app.inject({ url: `/streams/${id}/events?from=8&limit=1` })).json().events[0]
  t.same(JSON.parse(message.data), stored, 'data: is the stored event, as every read returns it')
  t.equal(message.id, String(stored.globalPosition), 'id: is the global position')
})

t.test('Last-Event-ID resumes with no duplicate and no gap while appenders keep writing', async (t) => {
  const category = `race${Date.now() % 100000}`
  await append(`${category}-0`, { events: events(1) })
  let writing = true
  let end = 0
  const writers = Array.from({ length: 4 }, async (_, writer) => {
    for (let n = 0; writing || n < 20; n++) {
      end = Math.max(end, (await append(`${category}-${writer}`, { events: events(1 + (n % 3)) })).lastPosition)
    }
  })
  const received: number[] = []
  let lastId = '0'
  for (let connection = 0; connection < 4; connection++) {
    // `after=0` on every reconnect: Last-Event-ID wins over it
    const client = await subscribe(t, `/subscribe?category=${category}&after=0`, connection === 0 ? {} : { 'last-event-id': lastId })
    await client.waitForCount(15)
    client.close()
    received.push(...positions(client))
    lastId = client.lastId!
  }
  writing = false
  await Promise.all(writers)
  const last = await subscribe(t, `/subscribe?category=${category}`, { 'last-event-id': lastId })
  await waitFor('the last appended event', () => last.events.some((e) => e.globalPosition === end))
  received.push(...positions(last))
  t.same(received, [...new Set(received)], 'no position was delivered twice')
  // concurrent appends interleave their positions: the stored log is the reference
  const stored = await db.sql<{ position: number }[]>`select global_position as position from events where category = ${category} order by 1`
  t.same(received, stored.map((row) => row.position), 'every appended event, in position order, none skipped')
  t.ok(received.length > 60, `${received.length} events over 5 connections`)
})

t.test('filters work the same on replay and live, tenants and system streams included', async (t) => {
  const tag = streamId('f').slice(2)
  const correlationId = `corr-${tag}`
  const cases: [string, string | undefined, number][] = [
    [`/subscribe?type=Alpha${tag}&type=Beta${tag}`, undefined, 4],
    [`/subscribe?category=cat${tag}`, undefined, 4],
    [`/subscribe?streamId=cat${tag}-1`, undefined, 4],
    [`/subscribe?correlationId=${correlationId}`, undefined, 2],
    [`/subscribe?type=Alpha${tag}`, 'acme', 2],
    [`/subscribe?streamId=%24sys${tag}`, 'globex', 2],
  ]
  const write = async (): Promise<void> => {
    await append(`cat${tag}-1`, { events: [event(`Alpha${tag}`), event(`Gamma${tag}`, {}, { metadata: { correlationId } })] })
    await append(`other${tag}-1`, { events: [event(`Beta${tag}`)] })
    await append(`other${tag}-2`, { events: [event(`Gamma${tag}`, {}, { metadata: { correlationId: 'other' } })] })
    await append(`x${tag}-1`, { events: [event(`Alpha${tag}`)] }, 'acme')
    await append(`$sys${tag}`, { events: [event(`Delta${tag}`)] }, 'acme')
  }
  await write()
  const clients = await Promise.all(cases.map(([path, tenant]) => subscribe(t, path, tenant ? { 'x-tenant-id': tenant } : {})))
  for (const [index, client] of clients.entries()) await client.waitForCount(cases[index]![2] / 2)
  await write()
  for (const [index, client] of clients.entries()) {
    const [path, tenant, count] = cases[index]!
    const events = await client.waitForCount(count)
    const log = (await app.inject({ url: path.replace('/subscribe', '/events'), headers: tenant ? { 'x-tenant-id': tenant } : {} })).json().events
    t.same(events.map((e) => e.eventId), log.map((e: { eventId: string }) => e.eventId), `${path} ${tenant ?? ''}: what /events returns`)
    t.equal(events.length, count)
  }
  // a later event that matches proves nothing unwanted was merely still on its way
  await append(`cat${tag}-1`, { events: [event(`Alpha${tag}`)] })
  await clients[0]!.waitForCount(5)
  t.equal(clients[4]!.messages.length, 2, 'the acme subscriber never saw the default tenant’s events')
})

t.test('Accept: none, */* and text/event-stream stream; anything else is 406 not-acceptable', async (t) => {
  for (const accept of [undefined, '*/*', 'text/event-stream', 'text/html, text/event-stream;q=0.9']) {
    const response = await probe('/subscribe', accept === undefined ? {} : { accept })
    t.equal(response.statusCode, 200, `Accept ${accept}`)
    t.match(response.headers['content-type'], /^text\/event-stream/)
    response.body.destroy()
  }
  for (const accept of ['application/json', 'text/html', 'text/event-stream;q=0']) {
    const response = await probe('/subscribe', { accept })
    t.equal(response.statusCode, 406, `Accept ${accept}`)
    t.match(response.headers['content-type'], /^application\/problem\+json/)
    t.match(await response.body.json(), { code: 'not-acceptable', status: 406 })
  }
  for (const [path, headers] of [['/subscribe?after=-1', {}], ['/subscribe?type=bad%20type', {}], ['/subscribe', { 'last-event-id': 'abc' }]] as const) {
    const response = await probe(path, headers)
    t.equal(response.statusCode, 400, `${path} ${JSON.stringify(headers)}`)
    await response.body.dump()
  }
  await waitFor('the probes to be released', () => liveFeed.stats().subscribers === 0)
})

t.test('an idle subscription gets heartbeat comments', async (t) => {
  const client = await subscribe(t, `/subscribe?streamId=${streamId('idle')}`)
  await waitFor('two heartbeats', () => client.comments.length >= 2)
  t.same(client.comments.slice(0, 2), ['heartbeat', 'heartbeat'])
  t.equal(client.messages.length, 0)
})

t.test('a disconnected subscriber releases everything at once', async (t) => {
  await waitFor('earlier subscribers to be gone', () => liveFeed.stats().subscribers === 0)
  t.equal(liveFeed.stats().listening, false, 'with no subscriber the feed does not listen for new events')
  const baseline = services.logWatcher.listenerCount('advance')
  // the heartbeat is the subscription's one timer: track intervals of its period made and cleared meanwhile
  const heartbeats = new Set<unknown>()
  const { setInterval: realSet, clearInterval: realClear } = globalThis
  globalThis.setInterval = ((handler: () => void, ms: number) => {
    const timer = realSet(handler, ms)
    if (ms === 50) heartbeats.add(timer)
    return timer
  }) as typeof setInterval
  globalThis.clearInterval = ((timer: NodeJS.Timeout | undefined) => {
    heartbeats.delete(timer)
    realClear(timer)
  }) as typeof clearInterval
  t.teardown(() => Object.assign(globalThis, { setInterval: realSet, clearInterval: realClear }))
  const id = streamId()
  const client = await SseClient.open(origin, `/subscribe?streamId=${id}`)
  await append(id, { events: events(2) })
  await client.waitForCount(2)
  t.match(liveFeed.stats(), { subscribers: 1, live: 1, listening: true, retrying: false })
  t.equal(services.logWatcher.listenerCount('advance'), baseline + 1, 'one listener for the feed')
  t.equal(heartbeats.size, 1, 'its heartbeat timer runs')
  client.close()
  await waitFor('the subscription to be released', () => liveFeed.stats().subscribers === 0)
  t.match(liveFeed.stats(), { live: 0, listening: false, retrying: false, subscriptions: [] }, 'nothing of it is left in the feed')
  t.equal(services.logWatcher.listenerCount('advance'), baseline, 'the feed’s listener is removed')
  t.equal(heartbeats.size, 0, 'its heartbeat timer is cleared')
})

t.test('upcasters apply to replayed and live events alike', async (t) => {
  await app.inject({ method: 'PUT', url: '/upcasters/SubscribedOrderPlaced', payload: { steps: [{ from: 1, to: 2, rename: { amount: 'total_amount' } }, { from: 2, to: 3, defaults: { currency: 'USD' } }] } })
  const id = streamId()
  await append(id, { events: [event('SubscribedOrderPlaced', { amount: 1 })] })
  const client = await subscribe(t, `/subscribe?streamId=${id}`)
  await client.waitForCount(1)
  await append(id, { events: [event('SubscribedOrderPlaced', { total_amount: 2 }, { metadata: { schemaVersion: 2 } })] })
  const [replayed, live] = await client.waitForCount(2)
  t.same([replayed!.data, replayed!.metadata], [{ total_amount: 1, currency: 'USD' }, { schemaVersion: 3 }])
  t.same([live!.data, live!.metadata], [{ total_amount: 2, currency: 'USD' }, { schemaVersion: 3 }])
})

t.test('closing the server ends open subscriptions instead of waiting for them', async (t) => {
  const client = await subscribe(t, `/subscribe?streamId=${streamId()}`)
  await waitFor('the subscription to be open', () => liveFeed.stats().subscribers >= 1)
  liveFeed.closeAll()
  await waitFor('the stream to end', () => client.ended)
  t.equal(liveFeed.stats().subscribers, 0)
})
