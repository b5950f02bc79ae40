import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { event, streamId } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/wait-for.js'

const { app, db } = await buildTestApp(t)

const put = (type: string, body: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'PUT', url: `/upcasters/${type}`, payload: body as object, headers })
const append = (id: string, body: object, tenant?: string) =>
  app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body, headers: tenant ? { 'x-tenant-id': tenant } : {} })

const SEED_STEPS = [
  { from: 1, to: 2, rename: { amount: 'total_amount' } },
  { from: 2, to: 3, defaults: { currency: 'USD' } },
]

t.test('PUT, GET and DELETE /upcasters/{type}', async (t) => {
  const created = await put('PaymentTaken', { steps: SEED_STEPS })
  t.equal(created.statusCode, 201)
  t.match(created.json(), { type: 'PaymentTaken', steps: SEED_STEPS, createdAt: String, updatedAt: String })
  const replaced = await put('PaymentTaken', { steps: SEED_STEPS.slice(0, 1) })
  t.equal(replaced.statusCode, 200)
  t.equal(replaced.json().createdAt, created.json().createdAt)
  const read = await app.inject({ url: '/upcasters/PaymentTaken' })
  t.same(read.json(), replaced.json())
  t.same((await app.inject({ url: '/upcasters' })).json().upcasters.map((u: { type: string }) => u.type), ['PaymentTaken'])
  const deleted = await app.inject({ method: 'DELETE', url: '/upcasters/PaymentTaken' })
  t.equal(deleted.statusCode, 204)
  t.equal(deleted.body, '')
  for (const method of ['GET', 'DELETE'] as const) {
    const gone = await app.inject({ method, url: '/upcasters/PaymentTaken' })
    t.equal(gone.statusCode, 404, method)
    t.match(gone.json(), { code: 'not-found', type: 'https://annalist.dev/problems/not-found', eventType: 'PaymentTaken' })
  }
})

t.test('an invalid definition is a 400 naming the bad part, and changes nothing', async (t) => {
  const bodies: [string, unknown, RegExp][] = [
    ['no steps', { steps: [] }, /steps/],
    ['an unknown field', { steps: SEED_STEPS, note: 'x' }, /note|additional/],
    ['an unknown step field', { steps: [{ from: 1, to: 2, rename: {}, drop: ['a'] }] }, /steps\/0|additional/],
    ['from 0', { steps: [{ from: 0, to: 1 }] }, /steps\/0\/from/],
    ['to is not from + 1', { steps: [{ from: 1, to: 3 }] }, /steps\[0\]\.to must be 2/],
    ['a gap', { steps: [{ from: 1, to: 2 }, { from: 3, to: 4 }] }, /steps\[1\]\.from must be 2/],
    ['a bad field name', { steps: [{ from: 1, to: 2, rename: { 'a b': 'c' } }] }, /steps\[0\]\.rename: "a b"/],
    ['remove is not a list', { steps: [{ from: 1, to: 2, remove: 'a' }] }, /remove/],
  ]
  for (const [name, body, detail] of bodies) {
    const res = await put('Refused', body)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), { code: 'validation-failed', detail }, name)
  }
  t.equal((await put('bad%20type', { steps: SEED_STEPS })).statusCode, 400, 'a bad event type')
  t.equal((await app.inject({ url: '/upcasters/Refused' })).statusCode, 404)
})

t.test('the seeds’ example (V1 amount → V2 total_amount → V3 currency USD) on every read path', async (t) => {
  t.equal((await put('OrderPlaced', { steps: SEED_STEPS }, { 'x-tenant-id': 'acme' })).statusCode, 201, 'upcasters are global: any tenant may register them')
  const id = streamId()
  const appended = await append(id, {
    events: [
      event('OrderPlaced', { amount: 10 }),
      event('OrderPlaced', { total_amount: 20 }, { metadata: { schemaVersion: 2 } }),
      event('OrderPlaced', { total_amount: 30, currency: 'EUR' }, { metadata: { schemaVersion: 3 } }),
      event('OrderShipped', { amount: 1 }),
    ],
  })
  const expected = [
    { data: { total_amount: 10, currency: 'USD' }, metadata: { schemaVersion: 3 } },
    { data: { total_amount: 20, currency: 'USD' }, metadata: { schemaVersion: 3 } },
    { data: { total_amount: 30, currency: 'EUR' }, metadata: { schemaVersion: 3 } },
    { data: { amount: 1 }, metadata: {} },
  ]
  const shape = (events: { data: unknown; metadata: unknown }[]) => events.map(({ data, metadata }) => ({ data, metadata }))

  t.same(shape((await app.inject({ url: `/streams/${id}/events` })).json().events), expected, 'stream read')
  t.same(shape((await app.inject({ url: `/streams/${id}/events?direction=backward` })).json().events), [...expected].reverse(), 'backward stream read')
  await waitFor('the log head to cover the append', async () => (await app.inject({ url: '/events?limit=1' })).json().head >= appended.json().lastPosition)
  t.same(shape((await app.inject({ url: `/events?streamId=${id}` })).json().events), expected, 'global log')
  t.same(shape((await app.inject({ url: `/streams/${id}/load` })).json().events), expected, 'load')
  await app.inject({ method: 'PUT', url: `/streams/${id}/snapshots/1`, payload: { state: {} } })
  t.same(shape((await app.inject({ url: `/streams/${id}/load` })).json().events), expected.slice(1), 'load after a snapshot')

  const [raw] = await db.sql<{ data: unknown; metadata: unknown }[]>`select data, metadata from events where stream_id = ${id} and stream_version = 1`
  t.same(raw, { data: { amount: 10 }, metadata: {} }, 'the stored event never changes')

  t.equal((await app.inject({ method: 'DELETE', url: '/upcasters/OrderPlaced' })).statusCode, 204)
  t.same((await app.inject({ url: `/streams/${id}/events?limit=1` })).json().events[0].data, { amount: 10 }, 'without the upcaster the event reads as stored')
})

t.test('projection handlers see events upcast too', async (t) => {
  t.equal((await put('InvoiceRaised', { steps: SEED_STEPS })).statusCode, 201)
  const definition = {
    source: { types: ['InvoiceRaised'] },
    documentId: '$.streamId',
    handlers: { InvoiceRaised: { set: { total: '$.data.total_amount', currency: '$.data.currency', schemaVersion: '$.metadata.schemaVersion' } } },
  }
  t.equal((await app.inject({ method: 'PUT', url: '/projections/invoices', payload: definition })).statusCode, 201)
  const id = streamId('invoice')
  const { lastPosition } = (await append(id, { events: [event('InvoiceRaised', { amount: 99 })] })).json()
  const read = await app.inject({ url: `/projections/invoices/documents/${id}?waitFor=${lastPosition}` })
  t.equal(read.statusCode, 200)
  t.same(read.json().document, { total: 99, currency: 'USD', schemaVersion: 3 })
})
