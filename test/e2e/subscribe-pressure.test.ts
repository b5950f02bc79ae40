import type { AddressInfo } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { connect } from '../../src/db/connect.js'
import { SUBSCRIPTION_BUFFER_LIMITS } from '../../src/subscriptions/live-feed.js'
import { event, streamId } from '../helpers/fixtures.js'
import { SseClient } from '../helpers/sse-client.js'
import { buildTestApp } from '../helpers/test-app.js'
import { SERVER_URL } from '../helpers/test-database.js'
import { waitFor } from '../helpers/wait-for.js'

// GET /subscribe under load, over real sockets: many idle subscribers, and one that stops reading.
const POOL = 4
const { app, services, db } = await buildTestApp(t, { MAX_BODY_BYTES: String(4 * 1024 * 1024) }, { max: POOL })
await app.listen({ port: 0, host: '127.0.0.1' })
const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
const { liveFeed } = services
const admin = connect(SERVER_URL, { max: 1 })
t.teardown(() => admin.end({ timeout: 1 }))

const append = async (id: string, body: object): Promise<{ lastPosition: number }> => {
  const res = await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body })
  if (res.statusCode !== 201) throw new Error(`append answered ${res.statusCode}: ${res.body.slice(0, 200)}`)
  return res.json()
}
const connections = async (): Promise<{ total: number; listening: number }> => {
  const [row] = await admin<{ total: number; listening: number }[]>`
    select count(*)::int as total,
           count(*) filter (where query ilike 'listen %')::int as listening
      from pg_stat_activity
     where datname = ${db.name}`
  return row!
}

t.test('200 idle subscribers share the LISTEN connection and one read per new batch', async (t) => {
  const category = 'idle'
  for (let n = 0; n < 10; n++) await append(`${category}-${n}`, { events: Array.from({ length: 5 }, () => event('Idled', { n })) })
  const clients: SseClient[] = []
  t.teardown(() => clients.forEach((client) => client.close()))
  for (let batch = 0; batch < 10; batch++) {
    clients.push(...(await Promise.all(Array.from({ length: 20 }, () => SseClient.open(origin, `/subscribe?category=${category}`)))))
  }
  await waitFor('every subscriber to replay the 50 events and go live', () => clients.every((client) => client.messages.length === 50) && liveFeed.stats().live === 200, { timeoutMs: 30_000 })

  const idle = await connections()
  t.equal(idle.listening, 1, 'one LISTEN connection for the whole process')
  t.ok(idle.total <= POOL + 1, `${idle.total} database connections for 200 subscribers (pool ${POOL} + LISTEN)`)

  const readsBefore = liveFeed.stats().reads
  const { lastPosition } = await append(`${category}-new`, { events: [event('Idled', { n: 'new' })] })
  await waitFor('all 200 to get the new event', () => clients.every((client) => client.lastId === String(lastPosition)))
  t.equal(liveFeed.stats().reads - readsBefore, 1, 'one shared read of the log delivered it to all 200')
  t.ok((await connections()).total <= POOL + 1, 'and the connection count did not grow')

  for (const client of clients) client.close()
  await waitFor('all 200 to be released', () => liveFeed.stats().subscribers === 0)
  t.equal(liveFeed.stats().listening, false)
})

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heapUsed = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
const MiB = 1024 * 1024

t.test('a subscriber that stops reading is paced: the server buffers a bounded amount, then resumes where it left off', async (t) => {
  const category = 'slow'
  const client = await SseClient.open(origin, `/subscribe?category=${category}`)
  t.teardown(() => client.close())
  await waitFor('the subscription to go live', () => liveFeed.stats().live === 1)
  client.pause()
  const heapBefore = heapUsed()

  // 24 MiB of events the client does not read: far more than the socket buffers on both sides hold
  const payload = 'x'.repeat(1000)
  const peak = { bufferedEvents: 0, bufferedBytes: 0, socketBytes: 0 }
  const sample = (): void => {
    for (const stats of liveFeed.stats().subscriptions) {
      for (const key of Object.keys(peak) as (keyof typeof peak)[]) peak[key] = Math.max(peak[key], stats[key])
    }
  }
  const sampler = setInterval(sample, 2)
  let last = 0
  for (let n = 0; n < 24; n++) {
    last = (await append(`${category}-${n % 4}`, { events: Array.from({ length: 1000 }, (_, index) => event('Slow', { n, index, payload })) })).lastPosition
  }
  await waitFor('the feed to move past the last append', () => liveFeed.position >= last)
  clearInterval(sampler)
  sample()
  const [stats] = liveFeed.stats().subscriptions
  const growth = heapUsed() - heapBefore

  t.ok(stats!.fallbacks >= 1, 'the subscriber left the shared feed when its buffer filled')
  t.equal(stats!.mode, 'replaying', 'and waits for the socket to drain')
  t.ok(stats!.delivered < 24_000, `only ${stats!.delivered} of 24,000 events went out while it was not reading`)
  t.ok(peak.bufferedEvents <= SUBSCRIPTION_BUFFER_LIMITS.maxBufferedEvents, `at most ${peak.bufferedEvents} events were queued`)
  t.ok(peak.bufferedBytes <= SUBSCRIPTION_BUFFER_LIMITS.maxBufferedBytes, `at most ${(peak.bufferedBytes / MiB).toFixed(1)} MiB were queued`)
  t.ok(peak.socketBytes <= 4 * MiB, `at most ${(peak.socketBytes / MiB).toFixed(1)} MiB waited in the socket`)
  t.ok(growth < 12 * MiB, `the heap grew by ${(growth / MiB).toFixed(1)} MiB while 24 MiB went unread`)

  client.resume()
  await waitFor('the client to read everything', () => client.lastId === String(last), { timeoutMs: 60_000 })
  const stored = await db.sql<{ position: number }[]>`select global_position as position from events where category = ${category} order by 1`
  t.same(client.events.map((e) => e.globalPosition), stored.map((row) => row.position), 'every event once, in order, across the pause')
  await waitFor('the subscriber to rejoin the live feed', () => liveFeed.stats().live === 1)
})

t.test('a subscriber that disconnects while paced releases at once', async (t) => {
  const id = streamId('gone')
  const client = await SseClient.open(origin, `/subscribe?streamId=${id}`)
  await waitFor('the subscription to go live', () => liveFeed.stats().live === 1)
  client.pause()
  // 12 MB: far more than the kernel takes of a socket that is not read, so the server is left holding some
  for (let batch = 0; batch < 3; batch++) await append(id, { events: Array.from({ length: 1000 }, () => event('Gone', { payload: 'y'.repeat(4000) })) })
  await waitFor('the socket to back up', () => liveFeed.stats().subscriptions[0]!.socketBytes > 0 || liveFeed.stats().subscriptions[0]!.mode === 'replaying')
  client.close()
  await waitFor('the subscription to be released', () => liveFeed.stats().subscribers === 0)
  t.match(liveFeed.stats(), { live: 0, listening: false, subscriptions: [] })
})
