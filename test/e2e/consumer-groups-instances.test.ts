import t from 'tap'
import { testDatabase } from '../helpers/test-database.js'
import { startServer } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'
import { pollerLog, runPoller } from '../helpers/group-pollers.js'

const STREAMS = 50
const APPENDS_PER_STREAM = 20
const EVENTS_PER_APPEND = 5
const POLLERS_PER_INSTANCE = 4

t.test('two instances serve one group: no event is leased to two pollers at once, and each goes out once', async (t) => {
  const db = await testDatabase(t)
  const [one, two] = await Promise.all([startServer(t, { DATABASE_URL: db.url! }), startServer(t, { DATABASE_URL: db.url! })])
  // a lease far longer than the run: an event handed out twice would have been leased to two pollers at once
  t.equal((await one.request('PUT', '/consumer-groups/shared', { body: { ackTimeoutMs: 600000 } })).status, 201)
  t.equal((await two.request('GET', '/consumer-groups/shared')).status, 200, 'the other instance sees the group')

  const log = pollerLog()
  const pollers = [one, two].flatMap((server, instance) =>
    Array.from({ length: POLLERS_PER_INSTANCE }, (_, index) => runPoller(server, 'shared', instance * POLLERS_PER_INSTANCE + index, log, 20)),
  )
  // appends go to both instances, so each instance's long polls are woken by the other's appends too
  for (let round = 0; round < APPENDS_PER_STREAM; round++) {
    await Promise.all(Array.from({ length: STREAMS }, async (_, stream) => {
      const events = Array.from({ length: EVENTS_PER_APPEND }, (_, index) => ({ type: 'Ticked', data: { round, index } }))
      const response = await (stream % 2 === 0 ? one : two).request('POST', `/streams/job-${stream}/events`, { body: { events } })
      if (response.status !== 201) throw new Error(`append ${response.status}`)
    }))
  }
  const total = STREAMS * APPENDS_PER_STREAM * EVENTS_PER_APPEND
  await waitFor('every event acked', () => log.failures.length > 0 || log.confirmed.size >= total, { timeoutMs: 120_000, intervalMs: 20 })
  log.stop = true
  await Promise.all(pollers)

  t.same(log.failures, [], 'no poll or ack failed')
  t.same(log.partial, [], 'every ack was taken whole')
  const counts = new Map<string, number>()
  for (const { eventId } of log.deliveries) counts.set(eventId, (counts.get(eventId) ?? 0) + 1)
  t.same([...counts].filter(([, count]) => count > 1), [], 'no event was handed out twice')
  t.equal(counts.size, total, `all ${total} events were handed out`)
  const byInstance = [0, 1].map((instance) => log.deliveries.filter((delivery) => Math.floor(delivery.poller / POLLERS_PER_INSTANCE) === instance).length)
  t.ok(byInstance.every((count) => count > 0), `both instances handed events out (${byInstance.join(' and ')})`)
  t.match((await two.request('GET', '/consumer-groups/shared')).body, { acked: total, delivered: total, inFlight: 0, lag: 0 })
})

t.test('an ack on one instance wakes a poll waiting on another at once, not at its next recheck', async (t) => {
  const db = await testDatabase(t)
  const [one, two] = await Promise.all([startServer(t, { DATABASE_URL: db.url! }), startServer(t, { DATABASE_URL: db.url! })])
  t.equal((await one.request('PUT', '/consumer-groups/handoff', { body: { ackTimeoutMs: 600000 } })).status, 201)
  t.equal((await one.request('POST', '/streams/job-1/events', { body: { events: [{ type: 'Ticked', data: {} }, { type: 'Ticked', data: {} }] } })).status, 201)
  const leased = (await one.request('POST', '/consumer-groups/handoff/poll?max=1')).body.events
  t.equal(leased.length, 1, 'the stream is leased on one instance')
  const waiting = two.request('POST', '/consumer-groups/handoff/poll?max=1&waitMs=10000')
  // the poll on two found the stream leased and waits (two's recheck is 1 s away)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.match((await one.request('POST', '/consumer-groups/handoff/ack', { body: { eventIds: [leased[0].eventId] } })).body, { acked: 1 })
  const acked = Date.now()
  const { body } = await waiting
  const after = Date.now() - acked
  t.equal(body.events[0]?.streamVersion, 2, 'the waiting poll on the other instance gets the stream\'s next event')
  t.ok(after < 600, `answered ${after} ms after the ack (a recheck would take about 850 ms)`)
})
