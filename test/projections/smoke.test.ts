import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'

t.test('smoke', async (t) => {
  const { app, db } = await buildTestApp(t)
  const put = await app.inject({ method: 'PUT', url: '/projections/orders', payload: {
    source: { categories: ['order'] }, documentId: '$.streamId',
    handlers: { OrderPlaced: { set: { status: 'placed', total: '$.data.total' } }, ItemAdded: { inc: { items: 1 }, push: { skus: '$.data.sku' } } },
  } })
  t.equal(put.statusCode, 201, put.payload)
  await app.inject({ method: 'POST', url: '/streams/order-1/events', payload: { events: [{ type: 'OrderPlaced', data: { total: 5 } }, { type: 'ItemAdded', data: { sku: 'a' } }] } })
  for (let i = 0; i < 100; i++) {
    const status = (await app.inject({ url: '/projections/orders' })).json()
    if (status.documents === 1 && status.lag === 0) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const rows = await db.sql`select * from projection_documents`
  t.same(rows[0]?.document, { status: 'placed', total: 5, items: 1, skus: ['a'] })
  console.log((await app.inject({ url: '/projections' })).json())
})
