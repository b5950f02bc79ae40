import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadCodeProjections } from '../../src/projections/code-modules.js'
import { buildTestApp } from '../helpers/test-app.js'
import { waitFor } from '../helpers/wait-for.js'

const EXAMPLES = fileURLToPath(new URL('../../examples/projections/', import.meta.url))

t.test('the shipped examples load as code projections', async (t) => {
  const modules = await loadCodeProjections(EXAMPLES)
  t.same(modules.map((module) => module.name).sort(), ['customer-summary', 'order-summary'])
})

t.test('order-summary and customer-summary build their documents', async (t) => {
  const { app, db } = await buildTestApp(t, { PROJECTIONS_DIR: EXAMPLES })
  const post = (streamId: string, type: string, data: unknown) =>
    app.inject({ method: 'POST', url: `/streams/${streamId}/events`, payload: { events: [{ type, data }] } })
  await post('customer-7', 'CustomerRegistered', { customerId: 'c-7', name: 'Ada', email: 'ada@example.com' })
  await post('order-1', 'OrderPlaced', { orderId: 'o-1', customerId: 'c-7', items: [{ sku: 'a', qty: 2, unitPrice: 5 }], currency: 'EUR', total: 10 })
  await post('order-2', 'OrderPlaced', { orderId: 'o-2', customerId: 'c-7', items: [{ sku: 'b', qty: 1, unitPrice: 2.5 }], currency: 'EUR', total: 2.5 })
  await post('order-1', 'OrderUpdated', { items: [{ sku: 'a', qty: 3, unitPrice: 5 }], total: 15 })
  await post('order-1', 'OrderShipped', { carrier: 'DHL', trackingNumber: 'T1' })
  await post('customer-7', 'CustomerRenamed', { customerId: 'c-7', name: 'Ada L.' })

  const documents = async (projection: string) =>
    Object.fromEntries(
      (await db.sql<{ id: string; document: Record<string, unknown> }[]>`
        select id, document from projection_documents where projection = ${projection} and document is not null`).map((row) => [row.id, row.document]),
    )
  await waitFor('both caught up', async () => {
    const views = (await app.inject({ url: '/projections' })).json().projections as { lag: number }[]
    return views.length === 2 && views.every((view) => view.lag === 0)
  })
  const orders = await documents('order-summary')
  t.match(orders['order-1'], { orderId: 'o-1', status: 'shipped', itemCount: 3, total: 15, carrier: 'DHL', trackingNumber: 'T1' })
  t.match(orders['order-2'], { orderId: 'o-2', status: 'placed', itemCount: 1, total: 2.5 })
  const customers = await documents('customer-summary')
  t.match(customers['c-7'], { customerId: 'c-7', name: 'Ada L.', email: 'ada@example.com', orders: 2, lifetimeValue: 12.5 })
})
