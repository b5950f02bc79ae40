import t from 'tap'
import { testDatabase } from '../helpers/test-database.js'
import { startServer } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'
import { waitForSessionsToEnd } from '../helpers/server-sessions.js'
import { pollerLog, runPoller } from '../helpers/group-pollers.js'

const STREAMS = 40
const EVENTS_PER_STREAM = 100
const POLLERS = 6

t.test('a SIGKILL mid-run loses nothing: after a restart every event is acked, and only leased ones come again', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url! })
  for (let stream = 0; stream < STREAMS; stream++) {
    const events = Array.from({ length: EVENTS_PER_STREAM }, (_, index) => ({ type: 'Ticked', data: { index } }))
    t.equal((await server.request('POST', `/streams/job-${stream}/events`, { body: { events } })).status, 201)
  }
  const total = STREAMS * EVENTS_PER_STREAM
  t.equal((await server.request('PUT', '/consumer-groups/jobs', { body: { ackTimeoutMs: 1000 } })).status, 201)

  const before = pollerLog()
  const pollers = Array.from({ length: POLLERS }, (_, poller) => runPoller(server, 'jobs', poller, before))
  await waitFor('a third of the events acked', () => before.failures.length > 0 || before.confirmed.size >= total / 3, { timeoutMs: 60_000, intervalMs: 2 })
  // a poller of our own that never acks holds some events leased at the kill, whatever the others' acks are doing
  // then (on a loaded machine every delivery could be acked by that moment)
  const held = await server.request('POST', '/consumer-groups/jobs/poll?max=5&waitMs=10000')
  t.equal(held.status, 200)
  for (const event of held.body.events as { eventId: string }[]) before.deliveries.push({ eventId: event.eventId, poller: -1, at: Date.now() })
  before.killed = true
  server.kill('SIGKILL')
  await Promise.all(pollers)
  t.same(before.failures, [], 'no failure before the kill')
  t.same(await server.waitForExit(), { code: null, signal: 'SIGKILL' })
  const deliveredBefore = new Set(before.deliveries.map((delivery) => delivery.eventId))
  const leasedAtKill = [...deliveredBefore].filter((id) => !before.confirmed.has(id))
  t.comment(`killed with ${before.confirmed.size} events acked, ${leasedAtKill.length} delivered and not confirmed acked, ${before.unanswered.size} in unanswered acks`)
  t.ok(leasedAtKill.length > 0, 'events were leased at the kill')

  await waitForSessionsToEnd(db.sql, server)
  const restarted = await startServer(t, { DATABASE_URL: db.url! })
  const after = pollerLog()
  const resumed = Array.from({ length: POLLERS }, (_, poller) => runPoller(restarted, 'jobs', poller, after))
  await waitFor('every event acked', async () => {
    const status = (await restarted.request('GET', '/consumer-groups/jobs')).body
    return after.failures.length > 0 || (status.acked === total && status.lag === 0)
  }, { timeoutMs: 120_000, intervalMs: 100 })
  after.stop = true
  await Promise.all(resumed)
  t.same(after.failures, [], 'no failure after the restart')
  t.same([...before.partial, ...after.partial], [], 'every ack was taken whole or not at all')

  const again = after.deliveries.map((delivery) => delivery.eventId).filter((id) => deliveredBefore.has(id))
  t.same(again.filter((id) => before.confirmed.has(id)), [], 'no event whose ack was answered is handed out again')
  t.same(again.filter((id) => !leasedAtKill.includes(id)), [], 'only events leased at the kill come again')
  t.comment(`${new Set(again).size} of ${leasedAtKill.length} leased events came again`)
  const acked = new Set([...before.confirmed, ...after.confirmed, ...before.unanswered])
  t.equal(acked.size, total, 'every event was acked, confirmed or in an ack the kill left unanswered')
  t.match((await restarted.request('GET', '/consumer-groups/jobs')).body, { acked: total, inFlight: 0, parked: 0, lag: 0 })
  const stored = await db.sql<{ count: number }[]>`select count(*)::int as count from consumer_group_events`
  t.equal(stored[0]!.count, 0, 'acked rows are compacted away')
})
