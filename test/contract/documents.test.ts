import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { putDocuments, seedProjection } from '../helpers/document-seeds.js'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildBrokenApp, LEAKS } from '../helpers/broken-app.js'
import { buildTestApp } from '../helpers/test-app.js'

// Document reads, checked against openapi.yaml like every other route.
const contract = await OpenapiContract.load()
const { app, db, config } = await buildTestApp(t)

const DOCUMENT = '/projections/{name}/documents/{id}'
const LIST = '/projections/{name}/documents'
const QUERY = '/projections/{name}/query'
const READS = /^\/projections\/\{name\}\/(documents|query)/

const callOn = (target: FastifyInstance) =>
  async (t: Test, path: string, url: string, options: { method?: 'GET' | 'POST'; payload?: unknown; headers?: Record<string, string> } = {}) => {
    const res = await target.inject({ url, method: options.method ?? 'GET', payload: options.payload as object, headers: options.headers })
    contract.check(t, options.method ?? 'GET', path, res)
    return res
  }
const call = callOn(app)

await seedProjection(db.sql, 'orders', { position: 20 })
await putDocuments(db.sql, 'orders', [
  { id: 'order-1', document: { status: 'placed', total: 10, address: { city: 'Berlin' } }, version: 11 },
  { id: 'order-2', document: { status: 'placed', total: 30 }, version: 12 },
  { id: 'order-3', document: { status: 'shipped', total: 20 }, version: 13 },
])

t.test('a document, its ETag and 304; missing ones are 404; a bad name is 400', async (t) => {
  const res = await call(t, DOCUMENT, '/projections/orders/documents/order-1?waitFor=20')
  t.equal(res.statusCode, 200)
  t.equal((await call(t, DOCUMENT, '/projections/orders/documents/order-1', { headers: { 'if-none-match': res.headers.etag as string } })).statusCode, 304)
  t.match((await call(t, DOCUMENT, '/projections/orders/documents/order-9')).json(), { code: 'document-not-found' })
  t.match((await call(t, DOCUMENT, '/projections/nope/documents/order-1')).json(), { code: 'projection-not-found' })
  t.equal((await call(t, DOCUMENT, '/projections/Bad!/documents/order-1')).statusCode, 400)
})

t.test('lists and queries page with a cursor and count', async (t) => {
  const first = await call(t, LIST, `/projections/orders/documents?filter=${encodeURIComponent('{"status":"placed"}')}&orderBy=total:desc&limit=1&count=true`)
  t.match(first.json(), { documents: [{ id: 'order-2' }], next: String, count: 2 })
  t.match((await call(t, LIST, `/projections/orders/documents?filter=${encodeURIComponent('{"status":"placed"}')}&orderBy=total:desc&limit=1&cursor=${first.json().next}`)).json(), { documents: [{ id: 'order-1' }], next: null })
  const body = { filter: { status: 'placed' }, where: [{ path: 'address.city', op: 'eq', value: 'Berlin' }], orderBy: [{ path: 'total' }], limit: 10, count: true }
  t.match((await call(t, QUERY, '/projections/orders/query', { method: 'POST', payload: body })).json(), { documents: [{ id: 'order-1' }], next: null, count: 1 })
  t.equal((await call(t, LIST, '/projections/orders/documents?filter=nope')).statusCode, 400)
  t.equal((await call(t, LIST, '/projections/nope/documents')).statusCode, 404)
  t.equal((await call(t, QUERY, '/projections/orders/query', { method: 'POST', payload: { where: [{ path: '$.total', op: 'eq', value: 1 }] } })).statusCode, 400)
  t.equal((await call(t, QUERY, '/projections/nope/query', { method: 'POST', payload: {} })).statusCode, 404)
  const large = JSON.stringify({ filter: { pad: 'x'.repeat(config.MAX_BODY_BYTES) } })
  t.equal((await call(t, QUERY, '/projections/orders/query', { method: 'POST', payload: large, headers: { 'content-type': 'application/json' } })).statusCode, 413)
  t.equal((await call(t, QUERY, '/projections/orders/query', { method: 'POST', payload: '{}', headers: { 'content-type': 'text/plain' } })).statusCode, 415)
})

t.test('waitFor past the projection’s position times out with 504 on every read', async (t) => {
  t.equal((await call(t, DOCUMENT, '/projections/orders/documents/order-1?waitFor=21&timeoutMs=10')).statusCode, 504)
  t.equal((await call(t, LIST, '/projections/orders/documents?waitFor=21&timeoutMs=10')).statusCode, 504)
  t.equal((await call(t, QUERY, '/projections/orders/query?waitFor=21&timeoutMs=10', { method: 'POST', payload: {} })).statusCode, 504)
})

t.test('a database failure is a generic 500', async (t) => {
  const callBroken = callOn(await buildBrokenApp(t, contract.doc))
  for (const res of [
    await callBroken(t, DOCUMENT, '/projections/orders/documents/order-1'),
    await callBroken(t, LIST, '/projections/orders/documents'),
    await callBroken(t, QUERY, '/projections/orders/query', { method: 'POST', payload: {} }),
  ]) {
    t.equal(res.statusCode, 500)
    t.notMatch(res.body, LEAKS, 'no database details leak')
  }
})

t.test('every documented status of the document reads was produced', async (t) => {
  t.same(contract.unexercised((path) => READS.test(path)), [])
})
