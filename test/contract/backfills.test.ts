import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { buildBrokenApp, LEAKS } from '../helpers/broken-app.js'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildTestApp } from '../helpers/test-app.js'
import { waitFor } from '../helpers/wait-for.js'

// Backfills and rollback, checked against openapi.yaml like every other route. Their behaviour is
// tested in test/routes/projections/backfills.test.ts and test/e2e/backfill-resume.test.ts.
const contract = await OpenapiContract.load()
const { app, config, db } = await buildTestApp(t)

const LIST = '/projections/{name}/backfills'
const ONE = '/projections/{name}/backfills/{id}'
const PROGRESS = '/projections/{name}/backfills/{id}/progress'
const ROLLBACK = '/projections/{name}/rollback'
const PATHS = /^\/projections\/\{name\}\/(backfills|rollback)/
const MISSING = '00000000-0000-4000-8000-000000000000'

const callOn = (target: FastifyInstance) => async (t: Test, method: string, path: string, options: InjectOptions & { url: string }) => {
  const res = await target.inject({ method: method as 'GET', ...options })
  contract.check(t, method, path, res)
  return res
}
const call = callOn(app)

const definition = { source: { categories: ['order'] }, documentId: '$.streamId', handlers: { Placed: { inc: { n: 1 } } } }
await app.inject({ method: 'PUT', url: '/projections/orders', payload: definition })
await app.inject({ method: 'POST', url: '/streams/order-1/events', payload: { events: [{ type: 'Placed', data: {} }] } })

const completed = (id: string) =>
  waitFor(`backfill ${id} completed`, async () => (await app.inject({ url: `/projections/orders/backfills/${id}` })).json().status === 'completed')

t.test('start, list, read, stream and cancel', async (t) => {
  const started = await call(t, 'POST', LIST, { url: '/projections/orders/backfills', payload: { criteria: 'full-rebuild' } })
  t.equal(started.statusCode, 202)
  const { id } = started.json()
  t.equal((await call(t, 'POST', LIST, { url: '/projections/orders/backfills', payload: { criteria: 'full-rebuild' } })).statusCode, 409)
  await completed(id)
  t.equal((await call(t, 'GET', LIST, { url: '/projections/orders/backfills' })).json().backfills.length, 1)
  t.equal((await call(t, 'GET', ONE, { url: `/projections/orders/backfills/${id}` })).json().status, 'completed')
  const stream = await call(t, 'GET', PROGRESS, { url: `/projections/orders/backfills/${id}/progress`, headers: { accept: 'text/event-stream' } })
  t.equal(stream.statusCode, 200)
  t.match(stream.body, /^event: progress\ndata: \{"id":"[^"]+","projection":"orders","status":"completed"/)
  t.equal((await call(t, 'DELETE', ONE, { url: `/projections/orders/backfills/${id}` })).statusCode, 409, 'an ended run')

  // a code projection whose module only another instance has: its run stays queued here
  await db.sql`insert into projections (name, kind) values ('elsewhere', 'code')`
  await db.sql`insert into projection_generations (projection, generation, definition_version, state) values ('elsewhere', 1, 1, 'live')`
  const queued = (await call(t, 'POST', LIST, { url: '/projections/elsewhere/backfills', payload: { criteria: 'last-n-events', count: 1 } })).json()
  t.equal(queued.status, 'queued')
  const cancelled = await call(t, 'DELETE', ONE, { url: `/projections/elsewhere/backfills/${queued.id}` })
  t.equal(cancelled.statusCode, 200)
  t.equal(cancelled.json().status, 'cancelled')
})

t.test('rollback', async (t) => {
  t.equal((await call(t, 'POST', ROLLBACK, { url: '/projections/orders/rollback' })).statusCode, 200, 'the full rebuild above retired a generation')
  const queued = (await app.inject({ method: 'POST', url: '/projections/elsewhere/backfills', payload: { criteria: 'full-rebuild' } })).json()
  const refused = await call(t, 'POST', ROLLBACK, { url: '/projections/elsewhere/rollback' })
  t.equal(refused.statusCode, 409)
  t.match(refused.json(), { code: 'backfill-in-progress', backfillId: queued.id })
  await app.inject({ method: 'DELETE', url: `/projections/elsewhere/backfills/${queued.id}` })
  t.match((await call(t, 'POST', ROLLBACK, { url: '/projections/elsewhere/rollback' })).json(), { code: 'conflict' }, 'no previous generation')
  t.equal((await call(t, 'POST', ROLLBACK, { url: '/projections/nope/rollback' })).statusCode, 404)
  t.equal((await call(t, 'POST', ROLLBACK, { url: '/projections/Bad!/rollback' })).statusCode, 400)
})

t.test('bad input, unknown names and ids, and wrong media types answer as documented', async (t) => {
  t.equal((await call(t, 'POST', LIST, { url: '/projections/orders/backfills', payload: { criteria: 'sometimes' } })).statusCode, 400)
  t.equal((await call(t, 'POST', LIST, { url: '/projections/nope/backfills', payload: { criteria: 'full-rebuild' } })).statusCode, 404)
  const large = JSON.stringify({ criteria: 'full-rebuild', requestedBy: 'x'.repeat(config.MAX_BODY_BYTES) })
  t.equal((await call(t, 'POST', LIST, { url: '/projections/orders/backfills', payload: large, headers: { 'content-type': 'application/json' } })).statusCode, 413)
  t.equal((await call(t, 'POST', LIST, { url: '/projections/orders/backfills', payload: 'x', headers: { 'content-type': 'text/plain' } })).statusCode, 415)
  t.equal((await call(t, 'GET', LIST, { url: '/projections/nope/backfills' })).statusCode, 404)
  t.equal((await call(t, 'GET', LIST, { url: '/projections/Bad!/backfills' })).statusCode, 400)
  for (const [method, path, suffix] of [['GET', ONE, ''], ['DELETE', ONE, ''], ['GET', PROGRESS, '/progress']] as const) {
    t.equal((await call(t, method, path, { url: `/projections/orders/backfills/${MISSING}${suffix}` })).statusCode, 404)
    t.equal((await call(t, method, path, { url: `/projections/orders/backfills/nope${suffix}` })).statusCode, 400)
  }
  t.equal((await call(t, 'GET', PROGRESS, { url: `/projections/orders/backfills/${MISSING}/progress`, headers: { accept: 'application/json' } })).statusCode, 406)
})

t.test('a database failure is a generic 500', async (t) => {
  const callBroken = callOn(await buildBrokenApp(t, contract.doc))
  const requests: [string, string, string, object?][] = [
    ['POST', LIST, '/projections/orders/backfills', { criteria: 'full-rebuild' }],
    ['GET', LIST, '/projections/orders/backfills'],
    ['GET', ONE, `/projections/orders/backfills/${MISSING}`],
    ['DELETE', ONE, `/projections/orders/backfills/${MISSING}`],
    ['GET', PROGRESS, `/projections/orders/backfills/${MISSING}/progress`],
    ['POST', ROLLBACK, '/projections/orders/rollback'],
  ]
  for (const [method, path, url, payload] of requests) {
    const res = await callBroken(t, method, path, { url, ...(payload ? { payload } : {}) })
    t.equal(res.statusCode, 500, `${method} ${path}`)
    t.notMatch(res.body, LEAKS, 'no database details leak')
  }
})

t.test('every documented status of the backfill routes was produced', async (t) => {
  t.same(contract.unexercised((path) => PATHS.test(path)), [])
})
