import t, { type Test } from 'tap'
import type { Sql } from '../../src/db/connect.js'
import { appendEvents } from '../../src/events/append.js'
import { CHANNEL } from '../../src/db/channels.js'
import { testDatabase } from '../helpers/test-database.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'
import { TickLoad } from '../helpers/tick-load.js'
import { sessionPids, terminateSessions } from '../helpers/server-sessions.js'
import { checkCounter, lockHolders, putCounter, readCheckpoint, waitCaughtUp } from '../helpers/counter-projection.js'

const CLIENTS = 4
const ACKS = 100
// SPEC "Projections": a dropped LISTEN connection delays but never stalls; the poll is every 500 ms
const CATCH_UP_MS = 5_000

const listenBackends = (sql: Sql, server: ServerProcess): Promise<number[]> => sessionPids(sql, server, 'listen%')

// An append the server never hears of: written by this process with the core function, no NOTIFY
// (or, with `notify`, followed by the NOTIFY another instance would send).
const appendUnheard = async (sql: Sql, bucket: string, notify = false): Promise<number> => {
  const result = await appendEvents(sql, 'default', 'tick-unheard', { events: [{ type: 'Tick', data: { bucket } }] })
  if (notify) await sql`select pg_notify(${CHANNEL.log}, '')`
  return result.lastPosition
}

// ms until the committed checkpoint reaches `position`
const untilProjected = async (sql: Sql, position: number, what: string): Promise<number> => {
  const started = Date.now()
  await waitFor(`the checkpoint to reach ${position} (${what})`, async () => (await readCheckpoint(sql)).position >= position, { timeoutMs: 30_000, intervalMs: 10 })
  return Date.now() - started
}

const runLoad = async (t: Test, server: ServerProcess, tag: string): Promise<TickLoad> => {
  const load = new TickLoad([server], tag).start(CLIENTS)
  await waitFor(`${ACKS} acknowledged appends (${tag})`, () => load.unexpected.length > 0 || load.acks.length >= ACKS, { timeoutMs: 60_000 })
  await load.stop()
  t.same(load.unexpected, [], `${tag}: every append succeeded`)
  return load
}

t.test('the projection survives a dropped LISTEN connection and the loss of every database session', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url })
  await putCounter(t, server)
  const listening = await waitFor('the server to LISTEN', async () => {
    const pids = await listenBackends(db.sql, server)
    return pids.length > 0 ? pids : false
  }, { timeoutMs: 10_000 })
  await runLoad(t, server, 'before any fault')

  await t.test('an append whose NOTIFY never comes is still projected, by the poll', async (t) => {
    const position = await appendUnheard(db.sql, 'b0')
    const ms = await untilProjected(db.sql, position, 'no NOTIFY sent')
    t.comment(`projected ${ms} ms after an append with no NOTIFY`)
    t.ok(ms <= CATCH_UP_MS, `within ${CATCH_UP_MS} ms (${ms} ms)`)
  })

  await t.test('a LISTEN connection terminated by the database: appends still reach the projection, and the server listens again', async (t) => {
    t.same(await terminateSessions(db.sql, listening), listening, `the LISTEN backend(s) ${listening.join(', ')} were terminated`)
    const droppedAt = Date.now()
    // appends by another instance (this process) with the NOTIFY it sends: the server can only learn of
    // them through its LISTEN connection or its poll
    const unheard = await appendUnheard(db.sql, 'b1', true)
    const ms = await untilProjected(db.sql, unheard, 'appended elsewhere after the LISTEN connection died')
    t.comment(`an append made elsewhere was projected ${ms} ms after the LISTEN connection was terminated`)
    t.ok(ms <= CATCH_UP_MS, `within ${CATCH_UP_MS} ms (${ms} ms)`)
    const load = await runLoad(t, server, 'after the LISTEN drop')
    const view = await waitCaughtUp(server, load.lastPosition(), 30_000)
    t.equal(view.status, 'running', 'the projection is running')
    const relistened = await waitFor('a new LISTEN connection', async () => {
      const pids = (await listenBackends(db.sql, server)).filter((pid) => !listening.includes(pid))
      return pids.length > 0 ? pids : false
    }, { timeoutMs: 10_000 })
    t.comment(`LISTEN again on backend ${relistened.join(', ')} ${Date.now() - droppedAt} ms after the drop`)
    t.pass('the server opened a new LISTEN connection')
    // heard again: an append made elsewhere with its NOTIFY is projected (timed for the record)
    const again = await appendUnheard(db.sql, 'b2', true)
    t.comment(`with the new LISTEN connection an append made elsewhere was projected in ${await untilProjected(db.sql, again, 'after re-listening')} ms`)
    await checkCounter(t, db.sql, 'after the LISTEN drop')
  })

  await t.test('every database session of the server terminated: it recovers, re-takes its projection and stays exact', async (t) => {
    const before = await sessionPids(db.sql, server)
    t.ok(before.length >= 3, `the server has ${before.length} backends`)
    t.same(await terminateSessions(db.sql, before), before, 'every one of them was terminated')
    const killedAt = Date.now()
    let failures = 0
    const first = await waitFor('an append to succeed again', async () => {
      const response = await server.request('POST', '/streams/tick-recovery/events', { body: { events: [{ type: 'Tick', data: { bucket: 'b3' } }] } })
      if (response.status === 201) return response.body.lastPosition as number
      failures++
      return false
    }, { timeoutMs: 30_000, intervalMs: 100 })
    t.comment(`appends succeed again ${Date.now() - killedAt} ms after the sessions were terminated (${failures} failed attempts)`)
    t.equal(server.exit, undefined, 'the server is still running')
    const load = await runLoad(t, server, 'after terminating every session')
    const holder = await waitFor('a backend of the server to hold the projection lock again', async () => {
      const holders = await lockHolders(db.sql)
      return holders.length === 1 && holders[0]!.applicationName === server.applicationName && !before.includes(holders[0]!.pid) ? holders[0] : false
    }, { timeoutMs: 15_000, intervalMs: 50 })
    t.comment(`projection lock re-taken by backend ${holder.pid} ${Date.now() - killedAt} ms after the sessions were terminated`)
    const view = await waitCaughtUp(server, Math.max(first, load.lastPosition()), 30_000)
    t.equal(view.status, 'running', 'the projection is running, not failed')
    t.ok((await listenBackends(db.sql, server)).length > 0, 'the server listens again')
    t.equal(server.exit, undefined, 'the server is still running')
    const checked = await checkCounter(t, db.sql, 'after terminating every session')
    t.comment(`${checked} stored Tick events counted exactly once`)
  })
})
