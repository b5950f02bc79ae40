import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from '../helpers/test-app.js'
import { caughtUp } from '../helpers/projection-api.js'
import { waitFor } from '../helpers/wait-for.js'
import type { Sql } from '../../src/db/connect.js'

const ORDERS = {
  source: { categories: ['order'] },
  documentId: '$.streamId',
  handlers: {
    OrderPlaced: { set: { status: 'placed', total: '$.data.total' } },
    ItemAdded: { inc: { items: 1 }, push: { skus: '$.data.sku' } },
    OrderCancelled: { delete: true },
  },
}

const append = (app: FastifyInstance, streamId: string, events: { type: string; data: unknown }[], tenant = 'default') =>
  app.inject({ method: 'POST', url: `/streams/${streamId}/events`, payload: { events }, headers: { 'x-tenant-id': tenant } })

const documents = async (sql: Sql, projection: string) =>
  Object.fromEntries(
    (
      await sql<{ tenant: string; id: string; document: unknown }[]>`
        select d.tenant, d.id, d.document
          from projection_documents d
          join projections p on p.name = d.projection and p.live_generation = d.generation
         where d.projection = ${projection}
           and d.document is not null`
    ).map((row) => [`${row.tenant}/${row.id}`, row.document]),
  )

const status = async (app: FastifyInstance, name: string) => (await app.inject({ url: `/projections/${name}` })).json()

t.test('a declarative projection builds documents from past and live events, per tenant', async (t) => {
  const { app, db } = await buildTestApp(t)
  await append(app, 'order-1', [{ type: 'OrderPlaced', data: { total: 10 } }, { type: 'ItemAdded', data: { sku: 'a' } }])
  await append(app, 'order-2', [{ type: 'OrderPlaced', data: { total: 20 } }])
  await append(app, 'order-1', [{ type: 'OrderPlaced', data: { total: 99 } }], 'acme')
  await append(app, 'customer-1', [{ type: 'OrderPlaced', data: { total: 1 } }])

  const put = await app.inject({ method: 'PUT', url: '/projections/orders', payload: ORDERS })
  t.equal(put.statusCode, 201)
  t.match(put.json(), { name: 'orders', kind: 'declarative', definitionVersion: 1 })
  await caughtUp(app, 'orders')
  t.same(await documents(db.sql, 'orders'), {
    'default/order-1': { status: 'placed', total: 10, items: 1, skus: ['a'] },
    'default/order-2': { status: 'placed', total: 20 },
    'acme/order-1': { status: 'placed', total: 99 },
  })

  await append(app, 'order-2', [{ type: 'ItemAdded', data: { sku: 'b' } }, { type: 'ItemAdded', data: { sku: 'c' } }])
  await append(app, 'order-1', [{ type: 'OrderCancelled', data: {} }])
  await waitFor('live events applied', async () => !(await documents(db.sql, 'orders'))['default/order-1'])
  const after = await documents(db.sql, 'orders')
  t.same(after['default/order-2'], { status: 'placed', total: 20, items: 2, skus: ['b', 'c'] })
  t.same(after['acme/order-1'], { status: 'placed', total: 99 }, 'another tenant’s document of the same id is untouched')

  const view = await caughtUp(app, 'orders')
  t.match(view, { documents: 2, lastError: null, kind: 'declarative' })
  t.equal(view.position, view.head)
  const list = (await app.inject({ url: '/projections' })).json()
  t.same(list.projections.map((p: { name: string }) => p.name), ['orders'])
})

t.test('PUT validates, answers 200 when unchanged, and DELETE removes', async (t) => {
  const { app } = await buildTestApp(t)
  const bad = await app.inject({ method: 'PUT', url: '/projections/orders', payload: { ...ORDERS, documentId: 'streamId' } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), { code: 'validation-failed', detail: /documentId/ })
  t.equal((await app.inject({ method: 'PUT', url: '/projections/Bad%20Name', payload: ORDERS })).statusCode, 400)
  t.equal((await app.inject({ method: 'PUT', url: '/projections/orders', payload: ORDERS })).statusCode, 201)
  const again = await app.inject({ method: 'PUT', url: '/projections/orders', payload: ORDERS })
  t.equal(again.statusCode, 200)
  t.equal(again.json().definitionVersion, 1)
  t.equal((await app.inject({ method: 'DELETE', url: '/projections/orders' })).statusCode, 204)
  const gone = await app.inject({ url: '/projections/orders' })
  t.equal(gone.statusCode, 404)
  t.equal(gone.json().code, 'projection-not-found')
  t.equal((await app.inject({ method: 'POST', url: '/projections/orders/stop' })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: '/projections/orders/explode' })).statusCode, 404)
})

t.test('a failing handler is retried, then failed with position, event id and message; skip and restart', async (t) => {
  const { app, db } = await buildTestApp(t)
  const labelled = {
    source: { categories: ['order'] },
    documentId: '$.streamId',
    handlers: { Labelled: { set: { skus: '$.data.label' } }, ItemAdded: { push: { skus: '$.data.sku' } } },
  }
  await app.inject({ method: 'PUT', url: '/projections/labels', payload: labelled })
  const counter = { source: { categories: ['order'] }, documentId: '$.streamId', handlers: { Labelled: { inc: { n: 1 } }, ItemAdded: { inc: { n: 1 } } } }
  await app.inject({ method: 'PUT', url: '/projections/counter', payload: counter })
  await append(app, 'order-1', [{ type: 'Labelled', data: { label: 'not an array' } }])
  const poison = (await append(app, 'order-1', [{ type: 'ItemAdded', data: { sku: 'x' } }])).json()
  await append(app, 'order-2', [{ type: 'ItemAdded', data: { sku: 'y' } }])

  const failed = await waitFor('labels failed', async () => {
    const view = await status(app, 'labels')
    return view.status === 'failed' && view
  })
  const [stored] = await db.sql<{ eventId: string }[]>`select event_id as "eventId" from events where global_position = ${poison.firstPosition}`
  t.match(failed.lastError, { position: poison.firstPosition, eventId: stored!.eventId, message: /push skus/, tenant: 'default' })
  t.match(failed.failures, [{ tenant: 'default', position: poison.firstPosition }])
  // the tenant's own view: its documents stop right before the poison event (docs/projection-failures.md)
  const own = (await app.inject({ url: '/projections/labels', headers: { 'x-tenant-id': 'default' } })).json()
  t.equal(own.position, poison.firstPosition - 1, 'the tenant stops right before the poison event')
  const other = await caughtUp(app, 'counter')
  t.equal(other.documents, 2, 'the other projection kept running')

  const restarted = await app.inject({ method: 'POST', url: '/projections/labels/restart' })
  t.equal(restarted.statusCode, 200)
  t.not(restarted.json().status, 'stopped')
  const againFailed = await waitFor('labels failed again', async () => {
    const view = await status(app, 'labels')
    return view.status === 'failed' && view
  })
  t.equal(againFailed.lastError.position, poison.firstPosition, 'restart retried the same event')

  const skipped = await app.inject({ method: 'POST', url: '/projections/labels/skip' })
  t.equal(skipped.statusCode, 200)
  await caughtUp(app, 'labels')
  const docs = await documents(db.sql, 'labels')
  t.same(docs['default/order-1'], { skus: 'not an array' }, 'the poison event was skipped')
  t.same(docs['default/order-2'], { skus: ['y'] }, 'later events applied')
  const system = (await app.inject({ url: '/streams/$projection-labels/events' })).json()
  const types = system.events.map((e: { type: string }) => e.type)
  t.ok(types.includes('ProjectionFailed'))
  const skip = system.events.find((e: { type: string }) => e.type === 'ProjectionSkippedEvent')
  t.match(skip?.data, { projection: 'labels', tenant: 'default', position: poison.firstPosition, eventId: stored!.eventId })
  const notFailed = await app.inject({ method: 'POST', url: '/projections/labels/skip' })
  t.equal(notFailed.statusCode, 409, 'nothing to skip once running')
})

t.test('stop lets the batch commit and stops; start resumes; reset replays in place', async (t) => {
  const { app, db } = await buildTestApp(t)
  await app.inject({ method: 'PUT', url: '/projections/orders', payload: ORDERS })
  await append(app, 'order-1', [{ type: 'OrderPlaced', data: { total: 1 } }])
  await caughtUp(app, 'orders')
  const stopped = await app.inject({ method: 'POST', url: '/projections/orders/stop' })
  t.equal(stopped.json().status, 'stopped')
  await append(app, 'order-2', [{ type: 'OrderPlaced', data: { total: 2 } }])
  const head = (await status(app, 'orders')).position
  await waitFor('the head moves past the stopped projection', async () => (await status(app, 'orders')).lag > 0)
  t.equal((await status(app, 'orders')).position, head, 'a stopped projection does not move')
  t.notOk((await documents(db.sql, 'orders'))['default/order-2'])

  t.equal((await app.inject({ method: 'POST', url: '/projections/orders/start' })).statusCode, 200)
  await caughtUp(app, 'orders')
  t.ok((await documents(db.sql, 'orders'))['default/order-2'])

  await db.sql`update projection_documents set document = '{"tampered": true}' where projection = 'orders' and id = 'order-1'`
  const reset = await app.inject({ method: 'POST', url: '/projections/orders/reset' })
  t.equal(reset.statusCode, 200)
  await caughtUp(app, 'orders')
  t.same((await documents(db.sql, 'orders'))['default/order-1'], { status: 'placed', total: 1 }, 'replayed from the start')
  const system = (await app.inject({ url: '/streams/$projection-orders/events' })).json()
  t.same(
    system.events.map((e: { type: string }) => e.type).filter((type: string) => type !== 'ProjectionStarted'),
    ['ProjectionStopped'],
  )
})

t.test('a changed definition rebuilds beside the live documents and swaps in whole', async (t) => {
  const { app, db } = await buildTestApp(t)
  await app.inject({ method: 'PUT', url: '/projections/orders', payload: ORDERS })
  for (let i = 0; i < 30; i++) await append(app, `order-${i}`, [{ type: 'OrderPlaced', data: { total: i } }, { type: 'ItemAdded', data: { sku: `s${i}` } }])
  await caughtUp(app, 'orders')
  const changed = { ...ORDERS, handlers: { ...ORDERS.handlers, OrderPlaced: { set: { state: 'new', amount: '$.data.total' } } } }
  const put = await app.inject({ method: 'PUT', url: '/projections/orders', payload: changed })
  t.equal(put.statusCode, 200)
  t.equal(put.json().definitionVersion, 2)
  // every read sees one generation whole: all old-shaped or all new-shaped, never a mix
  const seen = new Set<string>()
  await waitFor('new definition live', async () => {
    const docs = Object.values(await documents(db.sql, 'orders')) as Record<string, unknown>[]
    const shapes = new Set(docs.map((doc) => ('state' in doc ? 'new' : 'old')))
    t.equal(shapes.size, 1, 'one generation at a time')
    t.equal(docs.length, 30, 'never half built')
    for (const shape of shapes) seen.add(shape)
    return shapes.has('new') && (await status(app, 'orders')).status === 'running'
  })
  t.same((await documents(db.sql, 'orders'))['default/order-3'], { state: 'new', amount: 3, items: 1, skus: ['s3'] })
  const system = (await app.inject({ url: '/streams/$projection-orders/events' })).json()
  t.ok(system.events.some((e: { type: string }) => e.type === 'ProjectionSwapped'))
})

t.test('code projections from PROJECTIONS_DIR run with load, store, delete and query', async (t) => {
  const dir = t.testdir({
    'totals.ts': `
      export default {
        name: 'totals',
        source: { categories: ['order'] },
        handlers: {
          OrderPlaced: async (event, ctx) => {
            const doc = (await ctx.load('all')) ?? { count: 0, sum: 0 }
            await ctx.store('all', { count: doc.count + 1, sum: doc.sum + event.data.total })
            await ctx.store(event.streamId, { total: event.data.total })
          },
          OrderCancelled: async (event, ctx) => {
            await ctx.delete(event.streamId)
            const left = await ctx.query({ filter: { total: 5 } })
            await ctx.store('fives', { ids: left.map((d) => d.id) })
          },
        },
      }`,
  })
  const { app, db } = await buildTestApp(t, { PROJECTIONS_DIR: dir })
  await append(app, 'order-1', [{ type: 'OrderPlaced', data: { total: 5 } }])
  await append(app, 'order-2', [{ type: 'OrderPlaced', data: { total: 5 } }])
  await append(app, 'order-2', [{ type: 'OrderCancelled', data: {} }])
  const view = await caughtUp(app, 'totals')
  t.equal(view.kind, 'code')
  t.same(await documents(db.sql, 'totals'), {
    'default/all': { count: 2, sum: 10 },
    'default/order-1': { total: 5 },
    'default/fives': { ids: ['order-1'] },
  })
  const put = await app.inject({ method: 'PUT', url: '/projections/totals', payload: ORDERS })
  t.equal(put.statusCode, 409, 'a code projection is not redefined over HTTP')
})
