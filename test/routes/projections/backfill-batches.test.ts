import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { BACKFILL_BATCH_SIZE } from '../../../src/projections/runner.js'
import { buildTestApp } from '../../helpers/test-app.js'
import { waitFor } from '../../helpers/wait-for.js'
import { caughtUp } from '../../helpers/projection-api.js'

// A rebuild whose request names no batchSize commits BACKFILL_BATCH_SIZE events a transaction (docs/performance.md
// "Rebuilds: the batch a request does not name"): smaller than the live worker's, so the requests served meanwhile
// keep their latency. Documents written in one transaction share its xmin, so the new generation's documents, one
// per stream, tell how many transactions wrote them.
const STREAMS = 1000
const TICKS = { source: { categories: ['tick'] }, documentId: '$.streamId', handlers: { Tick: { inc: { count: 1 } } } }

const rebuild = async (app: FastifyInstance, body: object) => {
  const started = await app.inject({ method: 'POST', url: '/projections/ticks/backfills', payload: { criteria: 'full-rebuild', ...body } })
  if (started.statusCode !== 202) throw new Error(`backfill: ${started.statusCode} ${started.body}`)
  const { id } = started.json()
  return waitFor(`backfill ${id} completed`, async () => {
    const view = (await app.inject({ url: `/projections/ticks/backfills/${id}` })).json()
    if (view.status === 'failed') throw new Error(`backfill failed: ${view.error}`)
    return view.status === 'completed' && view
  }, { timeoutMs: 60_000 })
}

t.test('a rebuild that names no batchSize commits the default number of events a transaction', async (t) => {
  const { app, db } = await buildTestApp(t)
  const statuses = new Set<number>()
  for (let stream = 0; stream < STREAMS; stream++) {
    statuses.add((await app.inject({ method: 'POST', url: `/streams/tick-${stream}/events`, payload: { events: [{ type: 'Tick', data: {} }] } })).statusCode)
  }
  t.same([...statuses], [201], 'every append stored')
  t.equal((await app.inject({ method: 'PUT', url: '/projections/ticks', payload: TICKS })).statusCode, 201)
  await caughtUp(app, 'ticks')
  const transactions = async (): Promise<{ documents: number; transactions: number }> => {
    const [row] = await db.sql<{ documents: number; transactions: number }[]>`
      select count(*)::int as documents, count(distinct xmin::text)::int as transactions
        from projection_documents
       where projection = 'ticks'
         and generation = (select max(generation) from projection_documents where projection = 'ticks')`
    return row!
  }
  await rebuild(app, { atomic: true })
  t.same(await transactions(), { documents: STREAMS, transactions: Math.ceil(STREAMS / BACKFILL_BATCH_SIZE) }, `batches of ${BACKFILL_BATCH_SIZE}`)
  await rebuild(app, { atomic: true, batchSize: STREAMS })
  t.same(await transactions(), { documents: STREAMS, transactions: 1 }, 'a request that names a batchSize gets it')
})
