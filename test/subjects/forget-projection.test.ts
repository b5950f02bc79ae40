import t from 'tap'
import { randomUUID } from 'node:crypto'
import { buildTestApp } from '../helpers/test-app.js'
import { caughtUp } from '../helpers/projection-api.js'
import { streamId } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/wait-for.js'

// SPEC "Personal data": every projection that applied an event of a forgotten subject is rebuilt so that no document
// keeps what came from its personal data; its earlier snapshots, its previous generation and the aggregate snapshots
// of the streams holding the events go.
const { app, db } = await buildTestApp(t)

const customers = {
  source: { categories: ['customer'] },
  documentId: '$.streamId',
  handlers: { CustomerRegistered: { set: { name: '$.personalData.name', plan: '$.data.plan' } } },
}
const orders = { source: { categories: ['order'] }, documentId: '$.streamId', handlers: { OrderPlaced: { set: { total: '$.data.total' } } } }

t.test('a forget rebuilds the projections that took the events, and keeps nothing of the personal data', async (t) => {
  t.equal((await app.inject({ method: 'PUT', url: '/projections/customers', payload: customers })).statusCode, 201)
  t.equal((await app.inject({ method: 'PUT', url: '/projections/orders', payload: orders })).statusCode, 201)
  const subject = `customer-${randomUUID().slice(0, 8)}`
  const marker = `marker-${randomUUID()}`
  const [id, other] = [streamId('customer'), streamId('customer')]
  const append = (stream: string, body: object) => app.inject({ method: 'POST', url: `/streams/${stream}/events`, payload: body })
  t.equal((await append(id, { events: [{ type: 'CustomerRegistered', data: { plan: 'gold' }, subject, personalData: { name: marker } }] })).statusCode, 201)
  await append(other, { events: [{ type: 'CustomerRegistered', data: { plan: 'free' }, subject: 'someone-else', personalData: { name: 'Grace' } }] })
  await append(streamId('order'), { events: [{ type: 'OrderPlaced', data: { total: 5 } }] })
  await caughtUp(app, 'customers')
  await caughtUp(app, 'orders')
  t.same((await app.inject({ url: `/projections/customers/documents/${id}` })).json().document, { name: marker, plan: 'gold' }, 'handlers read $.personalData')
  t.equal((await app.inject({ method: 'POST', url: '/projections/customers/snapshots' })).statusCode, 201)
  t.equal((await app.inject({ method: 'PUT', url: `/streams/${id}/snapshots/1`, payload: { state: { name: marker } } })).statusCode, 201)
  t.equal((await app.inject({ method: 'PUT', url: `/streams/${other}/snapshots/1`, payload: { state: { name: 'Grace' } } })).statusCode, 201)
  const ordersGeneration = (await app.inject({ url: '/projections/orders' })).json().definitionVersion

  const res = await app.inject({ method: 'DELETE', url: `/subjects/${subject}` })
  t.equal(res.statusCode, 202)
  const { rebuilds } = res.json()
  t.same(rebuilds.map((rebuild: { projection: string }) => rebuild.projection), ['customers'], 'only the projection whose source took the events')
  t.match(rebuilds[0].backfillId, /^[0-9a-f-]{36}$/)
  t.equal((await app.inject({ url: `/streams/${id}/snapshots/latest` })).statusCode, 404, "the stream's aggregate snapshots are gone")
  t.equal((await app.inject({ url: `/streams/${other}/snapshots/latest` })).statusCode, 200, "another stream's stay")

  await waitFor('the rebuild done', async () => (await app.inject({ url: `/subjects/${subject}` })).json().pending.length === 0, { timeoutMs: 30_000 })
  const backfill = (await app.inject({ url: `/projections/customers/backfills/${rebuilds[0].backfillId}` })).json()
  t.equal(backfill.status, 'completed')
  await caughtUp(app, 'customers')
  t.same((await app.inject({ url: `/projections/customers/documents/${id}` })).json().document, { plan: 'gold' }, 'the rebuilt document lacks the forgotten field')
  t.same((await app.inject({ url: `/projections/customers/documents/${other}` })).json().document, { name: 'Grace', plan: 'free' })
  t.same((await app.inject({ url: '/projections/customers/snapshots' })).json().snapshots, [], 'snapshots taken before the forget are gone')
  t.equal((await app.inject({ method: 'POST', url: '/projections/customers/rollback' })).statusCode, 409, 'no previous generation to roll back to')
  t.equal((await app.inject({ url: '/projections/orders' })).json().definitionVersion, ordersGeneration)
  const leaks = await db.sql`
    select 'document' from projection_documents where document::text like ${`%${marker}%`}
    union all select 'snapshot' from stream_snapshots where state::text like ${`%${marker}%`}`
  t.equal(leaks.length, 0, 'no table of projections or snapshots holds the marker')
})

t.test('a forget during a running rebuild supersedes it; GET shows the projection pending until one completes', async (t) => {
  const subject = `customer-${randomUUID().slice(0, 8)}`
  const id = streamId('customer')
  await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: { events: [{ type: 'CustomerRegistered', data: { plan: 'x' }, subject, personalData: { name: 'Ada' } }] } })
  await caughtUp(app, 'customers')
  await app.inject({ method: 'POST', url: '/projections/customers/stop' })
  const running = (await app.inject({ method: 'POST', url: '/projections/customers/backfills', payload: { criteria: 'full-rebuild' } })).json()
  const res = (await app.inject({ method: 'DELETE', url: `/subjects/${subject}` })).json()
  t.equal(res.rebuilds.length, 1)
  t.not(res.rebuilds[0].backfillId, running.id)
  t.equal((await app.inject({ url: `/projections/customers/backfills/${running.id}` })).json().status, 'cancelled')
  t.same((await app.inject({ url: `/subjects/${subject}` })).json().pending, ['customers'], 'pending while the projection is stopped')
  await app.inject({ method: 'POST', url: '/projections/customers/start' })
  await waitFor('the rebuild done', async () => (await app.inject({ url: `/subjects/${subject}` })).json().pending.length === 0, { timeoutMs: 30_000 })
  t.same((await app.inject({ url: `/projections/customers/documents/${id}` })).json().document, { plan: 'x' })
})
