import t from 'tap'
import type { Sql } from '../../src/db/connect.js'
import { testDatabase } from '../helpers/test-database.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'
import { TickLoad } from '../helpers/tick-load.js'
import { checkCounter, CheckpointSampler, COUNTER, putCounter, readCheckpoint, waitCaughtUp } from '../helpers/counter-projection.js'
import { waitForSessionsToEnd } from '../helpers/server-sessions.js'

const CYCLES = 3
const CLIENTS = 12
const ACKS_BEFORE_KILL = 300
const ACKS_AFTER_RESTART = 150

interface Moment {
  // a transaction of the server had written documents or was moving the checkpoint, not yet committed
  batchOpen: boolean
  position: number
  lastStored: number
}

// A batch is in flight when one of the server's backends sits in a transaction whose latest statement
// wrote documents or the checkpoint; failing that, when the projection is behind the stored log.
const moment = async (sql: Sql, server: ServerProcess, after: number): Promise<Moment | false> => {
  const [row] = await sql<Moment[]>`
    select exists (
             select 1 from pg_stat_activity
              where application_name = ${server.applicationName}
                and xact_start is not null
                and (query ilike '%insert into projection_documents%' or query ilike '%update projection_generations%')
           ) as "batchOpen",
           g.position,
           coalesce((select max(global_position) from events), 0) as "lastStored"
      from projection_generations g
      join projections p on p.name = g.projection and p.live_generation = g.generation
     where p.name = ${COUNTER}`
  return row !== undefined && row.position > after && row.position < row.lastStored ? row : false
}

// Waits (bounded) for the likeliest moment a batch is uncommitted; settles for "behind the log" if none shows.
const killMidBatch = async (sql: Sql, server: ServerProcess, load: TickLoad, after: number): Promise<Moment & { inFlight: number }> => {
  let behind: Moment | undefined
  const seen = await waitFor('a projection batch in flight', async () => {
    const now = await moment(sql, server, after)
    if (now) behind = now
    return now && now.batchOpen ? now : false
  }, { timeoutMs: 15_000, intervalMs: 1 }).catch(() => undefined)
  const at = seen ?? behind ?? (await waitFor('the projection to be past its previous checkpoint and behind the log', () => moment(sql, server, after), { timeoutMs: 30_000, intervalMs: 5 }))
  // the load keeps running up to the kill; from here on its failures against this server are expected
  load.retire(server)
  const inFlight = load.inFlight
  server.kill('SIGKILL')
  return { ...at, inFlight }
}

t.test('a counter projection counts every stored event exactly once across three SIGKILLs under concurrent appends', async (t) => {
  const db = await testDatabase(t)
  let server = await startServer(t, { DATABASE_URL: db.url })
  await putCounter(t, server)
  const sampler = new CheckpointSampler(db.sql).start()
  let checked = 0
  let inFlightKills = 0
  let previous = 0

  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const load = new TickLoad([server], `cycle-${cycle}`).start(CLIENTS)
    await waitFor(`${ACKS_BEFORE_KILL} acknowledged appends`, () => load.unexpected.length > 0 || load.acks.length >= ACKS_BEFORE_KILL, { timeoutMs: 120_000 })
    t.same(load.unexpected, [], `cycle ${cycle}: no append failed before the kill`)
    const killed = server
    const at = await killMidBatch(db.sql, server, load, previous)
    await load.stop()
    t.same(await killed.waitForExit(), { code: null, signal: 'SIGKILL' }, `cycle ${cycle}: the server died of SIGKILL`)
    await waitForSessionsToEnd(db.sql, killed)
    const afterKill = await readCheckpoint(db.sql)
    if (at.batchOpen) inFlightKills++
    t.comment(`cycle ${cycle}: killed after ${load.acks.length} acks with ${at.inFlight} appends in flight; ` +
      `at the kill: checkpoint ${at.position}, last stored ${at.lastStored}, batch transaction open: ${at.batchOpen}; ` +
      `once its sessions ended: checkpoint ${afterKill.position}, last stored ${afterKill.lastStored}`)
    t.ok(afterKill.position > previous, `cycle ${cycle}: the projection had advanced before the kill`)
    t.ok(afterKill.maxVersion <= afterKill.position, `cycle ${cycle}: nothing committed beyond the checkpoint by the dead server`)

    const restarted = Date.now()
    server = await startServer(t, { DATABASE_URL: db.url })
    const more = new TickLoad([server], `cycle-${cycle}-after`).start(CLIENTS)
    await waitFor(`${ACKS_AFTER_RESTART} more acknowledged appends`, () => more.unexpected.length > 0 || more.acks.length >= ACKS_AFTER_RESTART, { timeoutMs: 120_000 })
    await more.stop()
    t.same(more.unexpected, [], `cycle ${cycle}: appends after the restart all succeed`)
    const lastAcked = Math.max(load.lastPosition(), more.lastPosition())
    const view = await waitCaughtUp(server, lastAcked)
    t.comment(`cycle ${cycle}: caught up to ${view.position} (last acknowledged ${lastAcked}) ${Date.now() - restarted} ms after the restart began`)
    t.equal(view.status, 'running', `cycle ${cycle}: the projection is running`)
    t.equal(view.documents, 4, `cycle ${cycle}: one document per bucket`)
    checked = await checkCounter(t, db.sql, `cycle ${cycle}`)
    previous = view.position
  }

  await sampler.stop()
  sampler.check(t, 'across all cycles')
  t.comment(`${CYCLES} SIGKILLs (${inFlightKills} with a batch transaction seen open), ${checked} stored Tick events counted exactly once, ${sampler.samples.length} checkpoint samples`)
})
