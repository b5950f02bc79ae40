import t from 'tap'
import type { Sql } from '../../src/db/connect.js'
import { testDatabase } from '../helpers/test-database.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'
import { waitForSessionsToEnd } from '../helpers/server-sessions.js'

const STREAMS = 30
const PER_STREAM = 200

const TICKS = {
  source: { categories: ['tick'] },
  documentId: '$.streamId',
  handlers: { Tick: { inc: { count: 1 } } },
}

const appendTicks = async (server: ServerProcess) => {
  for (let stream = 0; stream < STREAMS; stream++) {
    const events = Array.from({ length: PER_STREAM }, () => ({ type: 'Tick', data: {} }))
    const response = await server.request('POST', `/streams/tick-${stream}/events`, { body: { events } })
    if (response.status !== 201) throw new Error(`append: ${response.status}`)
  }
}

const progressOf = async (sql: Sql, id: string) => {
  const [row] = await sql<{ status: string; processed: number; total: number | null }[]>`
    select b.status, b.total, coalesce((select sum(p.processed) from projection_backfill_partitions p where p.backfill = b.id), 0)::int as processed
      from projection_backfills b where b.id = ${id}`
  return row!
}

// Kills the server while the run is part-way: some partition batches committed, others not yet.
const killMidRun = async (t: Test, sql: Sql, server: ServerProcess, id: string) => {
  const at = await waitFor('the run part-way', async () => {
    const progress = await progressOf(sql, id)
    return progress.status === 'running' && progress.total !== null && progress.processed >= progress.total / 4 && progress.processed < progress.total && progress
  }, { timeoutMs: 60_000, intervalMs: 2 })
  server.kill('SIGKILL')
  t.same(await server.waitForExit(), { code: null, signal: 'SIGKILL' }, 'the server died of SIGKILL')
  await waitForSessionsToEnd(sql, server)
  const after = await progressOf(sql, id)
  t.comment(`killed at ${at.processed}/${at.total} processed; ${after.processed} committed once its sessions ended`)
  t.ok(after.processed < after.total!, 'the run was interrupted before its end')
  return after
}

type Test = Parameters<Parameters<typeof t.test>[1]>[0]

const counts = async (server: ServerProcess, name: string) => {
  const response = await server.request('POST', `/projections/${name}/query`, { body: { limit: 1000 } })
  return (response.body as { documents: { id: string; document: { count: number } }[] }).documents.map((document) => document.document.count)
}

t.test('an atomic run and a non-atomic run interrupted by SIGKILL resume from their checkpoints with exact results', async (t) => {
  const db = await testDatabase(t)
  let server = await startServer(t, { DATABASE_URL: db.url })
  await appendTicks(server)
  t.equal((await server.request('PUT', '/projections/ticks', { body: TICKS })).status, 201)

  // atomic, in 3 partitions
  const atomic = (await server.request('POST', '/projections/ticks/backfills', { body: { criteria: 'full-rebuild', maxConcurrency: 3, batchSize: 30 } })).body as { id: string }
  await killMidRun(t, db.sql, server, atomic.id)
  server = await startServer(t, { DATABASE_URL: db.url })
  await waitFor('the atomic run to complete after the restart', async () => (await progressOf(db.sql, atomic.id)).status === 'completed', { timeoutMs: 120_000, intervalMs: 50 })
  t.match(await progressOf(db.sql, atomic.id), { processed: STREAMS * PER_STREAM, total: STREAMS * PER_STREAM })
  const atomicCounts = await counts(server, 'ticks')
  t.equal(atomicCounts.length, STREAMS)
  t.ok(atomicCounts.every((count) => count === PER_STREAM), `every stream counted exactly ${PER_STREAM} (${[...new Set(atomicCounts)]})`)

  // non-atomic, onto live documents the projection has not built yet: it is stopped before any event
  t.equal((await server.request('PUT', '/projections/fresh', { body: { ...TICKS, source: { categories: ['tock'] } } })).status, 201)
  t.equal((await server.request('POST', '/projections/fresh/stop')).status, 200)
  for (let stream = 0; stream < STREAMS; stream++) {
    const events = Array.from({ length: PER_STREAM }, () => ({ type: 'Tick', data: {} }))
    await server.request('POST', `/streams/tock-${stream}/events`, { body: { events } })
  }
  const live = (await server.request('POST', '/projections/fresh/backfills', { body: { criteria: 'full-rebuild', atomic: false, maxConcurrency: 2, batchSize: 30 } })).body as { id: string }
  await killMidRun(t, db.sql, server, live.id)
  server = await startServer(t, { DATABASE_URL: db.url })
  await waitFor('the non-atomic run to complete after the restart', async () => (await progressOf(db.sql, live.id)).status === 'completed', { timeoutMs: 120_000, intervalMs: 50 })
  const liveCounts = await counts(server, 'fresh')
  t.ok(liveCounts.length === STREAMS && liveCounts.every((count) => count === PER_STREAM), `every stream counted exactly ${PER_STREAM} (${[...new Set(liveCounts)]})`)

  // the projection's own worker now goes over the same events: documents that saw them take none twice
  t.equal((await server.request('POST', '/projections/fresh/start')).status, 200)
  await waitFor('the live worker to catch up', async () => {
    const view = (await server.request('GET', '/projections/fresh')).body as { lag: number; status: string }
    return view.lag === 0 && view.status === 'running'
  }, { timeoutMs: 60_000, intervalMs: 50 })
  const after = await counts(server, 'fresh')
  t.ok(after.every((count) => count === PER_STREAM), 'still exactly once after the live worker passed')
})
