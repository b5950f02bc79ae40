import t from 'tap'
import { createAnnalistClient } from '../../client/index.js'
import { startServer } from '../helpers/server-process.js'
import { testDatabase } from '../helpers/test-database.js'
import { waitFor } from '../helpers/wait-for.js'

// The client generated from openapi.yaml (client/), against the real server: if the document and the
// server disagree on a path, a body or a status, a step here fails (and `npm run lint` type-checks it).
t.test('append, conflict, read, a projection query and a backfill through the generated client', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url! })
  const client = createAnnalistClient(server.url)
  const stream = { params: { path: { streamId: 'order-7' } } }

  const placed = await client.POST('/streams/{streamId}/events', {
    ...stream,
    body: { expectedVersion: 0, events: [{ type: 'OrderPlaced', data: { total: 42 } }] },
  })
  t.equal(placed.response.status, 201)
  t.match(placed.data, { streamId: 'order-7', firstVersion: 1, lastVersion: 1 })

  const conflict = await client.POST('/streams/{streamId}/events', {
    ...stream,
    body: { expectedVersion: 0, events: [{ type: 'OrderPlaced', data: {} }] },
  })
  t.equal(conflict.response.status, 409)
  t.equal(conflict.data, undefined, 'a conflict has no data')
  t.match(conflict.error, { code: 'wrong-expected-version', currentVersion: 1 })

  const shipped = await client.POST('/streams/{streamId}/events', {
    ...stream,
    body: { expectedVersion: 1, events: [{ type: 'OrderShipped', data: { carrier: 'DHL' } }] },
  })
  t.equal(shipped.response.status, 201)
  const lastPosition = shipped.data!.lastPosition

  const read = await client.GET('/streams/{streamId}/events', stream)
  t.equal(read.response.status, 200)
  t.same(read.data?.events.map((event) => [event.streamVersion, event.type]), [[1, 'OrderPlaced'], [2, 'OrderShipped']])

  const transfer = await client.POST('/appends', {
    body: {
      appends: [
        { streamId: 'account-1', expectedVersion: 'no_stream', events: [{ type: 'MoneyDebited', data: { amount: 5 } }] },
        { streamId: 'account-2', expectedVersion: 'no_stream', events: [{ type: 'MoneyCredited', data: { amount: 5 } }] },
      ],
    },
  })
  t.equal(transfer.response.status, 201)
  t.same(transfer.data?.appends.map((run) => [run.streamId, run.firstVersion]), [['account-1', 1], ['account-2', 1]])
  const stale = await client.POST('/appends', {
    body: { appends: [{ streamId: 'account-1', expectedVersion: 0, events: [{ type: 'MoneyDebited', data: { amount: 1 } }] }] },
  })
  t.equal(stale.response.status, 409)
  t.match(stale.error, { code: 'wrong-expected-version', conflicts: [{ streamId: 'account-1', expectedVersion: 0, currentVersion: 1 }] })

  const defined = await client.PUT('/projections/{name}', {
    params: { path: { name: 'orders' } },
    body: {
      source: { categories: ['order'] },
      documentId: '$.streamId',
      handlers: {
        OrderPlaced: { set: { status: 'placed', total: '$.data.total' } },
        OrderShipped: { set: { status: 'shipped', carrier: '$.data.carrier' } },
      },
    },
  })
  t.equal(defined.response.status, 201)

  const queried = await client.POST('/projections/{name}/query', {
    params: { path: { name: 'orders' }, query: { waitFor: lastPosition } },
    body: { where: [{ path: 'status', op: 'eq', value: 'shipped' }], count: true },
  })
  t.equal(queried.response.status, 200)
  t.match(queried.data, { documents: [{ id: 'order-7', document: { status: 'shipped', total: 42, carrier: 'DHL' } }], count: 1 })

  const started = await client.POST('/projections/{name}/backfills', {
    params: { path: { name: 'orders' } },
    body: { criteria: 'full-rebuild' },
  })
  t.equal(started.response.status, 202)
  t.match(started.data, { projection: 'orders', criteria: 'full-rebuild', atomic: true })
  const id = started.data!.id
  const run = { params: { path: { name: 'orders', id } } }
  const completed = await waitFor('the rebuild to complete', async () => {
    const { data } = await client.GET('/projections/{name}/backfills/{id}', run)
    if (data?.status === 'failed' || data?.status === 'cancelled') throw new Error(`the rebuild ended ${data.status}: ${data.error}`)
    return data?.status === 'completed' && data
  }, { timeoutMs: 30_000, intervalMs: 50 })
  t.match(completed, { processed: 2, total: 2, percent: 100 })

  const document = await client.GET('/projections/{name}/documents/{id}', { params: { path: { name: 'orders', id: 'order-7' } } })
  t.equal(document.response.status, 200)
  t.match(document.data, { id: 'order-7', document: { status: 'shipped', total: 42 } }, 'the rebuilt generation serves the document')

  const missing = await client.GET('/projections/{name}/documents/{id}', { params: { path: { name: 'orders', id: 'order-8' } } })
  t.equal(missing.response.status, 404)
  t.match(missing.error, { code: 'not-found' })
})
