import t from 'tap'
import type { InjectOptions } from 'fastify'
import { buildTestApp } from '../../helpers/test-app.js'
import { putDocuments, seedProjection, setLivePosition } from '../../helpers/document-seeds.js'
import { waitFor } from '../../helpers/wait-for.js'

const { app, db, services } = await buildTestApp(t)
const { sql } = db
const acme = { 'x-tenant-id': 'acme' }

const get = (url: string, headers: Record<string, string> = {}) => app.inject({ url, headers })
const query = (name: string, payload: unknown, options: Partial<InjectOptions> = {}) =>
  app.inject({ method: 'POST', url: `/projections/${name}/query`, payload: payload as object, ...options })
const ids = (res: { json: () => { documents: { id: string }[] } }) => res.json().documents.map((document) => document.id)

await seedProjection(sql, 'orders', { position: 40 })
await putDocuments(sql, 'orders', [
  { id: 'order-1', document: { status: 'placed', total: 10, customer: { name: 'ann' } }, version: 11 },
  { id: 'order-2', document: { status: 'shipped', total: 30 }, version: 12 },
  { id: 'order-3', document: { status: 'placed', total: 20 }, version: 13 },
  { id: 'order-1', document: { status: 'secret', total: 99 }, version: 14, tenant: 'acme' },
])

t.test('GET a document: 200 with its version, updatedAt and a strong ETag', async (t) => {
  const res = await get('/projections/orders/documents/order-1')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { id: 'order-1', document: { status: 'placed', total: 10, customer: { name: 'ann' } }, version: 11, updatedAt: /^\d{4}-\d\d-\d\dT/ })
  t.equal(res.headers.etag, '"1.11"', 'generation.version, quoted, not weak')
})

t.test('If-None-Match with the current ETag is a 304 without a body; a changed document is a 200 again', async (t) => {
  const etag = (await get('/projections/orders/documents/order-3')).headers.etag as string
  for (const header of [etag, `W/${etag}`, `"0.1", ${etag}`, '*']) {
    const res = await get('/projections/orders/documents/order-3', { 'if-none-match': header })
    t.equal(res.statusCode, 304, header)
    t.equal(res.body, '', 'no body')
    t.equal(res.headers.etag, etag, 'the ETag is repeated')
    t.notOk(res.headers['content-type'], 'no content type')
  }
  t.equal((await get('/projections/orders/documents/order-3', { 'if-none-match': '"1.12"' })).statusCode, 200)
  await putDocuments(sql, 'orders', [{ id: 'order-3', document: { status: 'shipped', total: 20 }, version: 15 }])
  const changed = await get('/projections/orders/documents/order-3', { 'if-none-match': etag })
  t.equal(changed.statusCode, 200)
  t.equal(changed.headers.etag, '"1.15"')
  t.equal(changed.json().document.status, 'shipped')
})

t.test('missing projection and document are 404 problems with their own codes', async (t) => {
  const noProjection = await get('/projections/nope/documents/order-1')
  t.equal(noProjection.statusCode, 404)
  t.match(noProjection.headers['content-type'], /^application\/problem\+json/)
  t.match(noProjection.json(), { code: 'projection-not-found', status: 404 })
  const noDocument = await get('/projections/orders/documents/order-9')
  t.match(noDocument.json(), { code: 'document-not-found', status: 404, id: 'order-9' })
  t.equal((await query('nope', {})).json().code, 'projection-not-found')
  t.equal((await get('/projections/nope/documents')).json().code, 'projection-not-found')
})

t.test('tenant B sees nothing of tenant A', async (t) => {
  t.equal((await get('/projections/orders/documents/order-1', acme)).json().document.status, 'secret')
  t.equal((await get('/projections/orders/documents/order-2', acme)).statusCode, 404)
  t.same(ids(await query('orders', {}, { headers: acme })), ['order-1'])
  t.same(ids(await query('orders', { filter: { status: 'secret' } })), [], 'the default tenant cannot find acme’s document')
  t.same((await query('orders', { count: true }, { headers: { 'x-tenant-id': 'other' } })).json(), { documents: [], next: null, count: 0 })
  t.same(ids(await get('/projections/orders/documents', { 'x-tenant-id': 'other' })), [])
})

t.test('POST query: filter, where, orderBy, limit, cursor and count', async (t) => {
  const body = { filter: { status: 'placed' }, where: [{ path: 'total', op: 'gte', value: 10 }], orderBy: [{ path: 'total', direction: 'desc' }], limit: 1, count: true }
  const first = await query('orders', body)
  t.equal(first.statusCode, 200)
  t.same(ids(first), ['order-1'], 'order-3 is shipped now')
  t.equal(first.json().count, 1)
  t.equal(first.json().next, null)
  const all = await query('orders', { orderBy: [{ path: 'total', direction: 'desc' }], limit: 2 })
  t.same(ids(all), ['order-2', 'order-3'])
  const rest = await query('orders', { orderBy: [{ path: 'total', direction: 'desc' }], limit: 2, cursor: all.json().next })
  t.same(ids(rest), ['order-1'])
  t.equal(rest.json().next, null)
  t.same(ids(await query('orders', { where: [{ path: 'customer.name', op: 'prefix', value: 'an' }] })), ['order-1'])
})

t.test('GET documents is the simple form: filter JSON, orderBy path[:dir] list, limit, cursor', async (t) => {
  const filter = encodeURIComponent(JSON.stringify({ status: 'shipped' }))
  const first = await get(`/projections/orders/documents?filter=${filter}&orderBy=total:desc,customer.name&limit=1`)
  t.equal(first.statusCode, 200)
  t.same(ids(first), ['order-2'])
  const rest = await get(`/projections/orders/documents?filter=${filter}&orderBy=total:desc,customer.name&limit=1&cursor=${first.json().next}`)
  t.same(ids(rest), ['order-3'])
  t.equal(rest.json().next, null)
  t.same(ids(await get('/projections/orders/documents?orderBy=total')), ['order-1', 'order-3', 'order-2'])
  t.equal((await get('/projections/orders/documents?count=true&limit=1')).json().count, 3)
})

t.test('bad queries are 400 validation-failed', async (t) => {
  const bodies: Record<string, unknown> = {
    'an unknown field': { filter: {}, sort: [] },
    'a $. path': { where: [{ path: '$.total', op: 'eq', value: 1 }] },
    'a $. orderBy path': { orderBy: [{ path: '$.total' }] },
    'an empty path segment': { where: [{ path: 'a..b', op: 'eq', value: 1 }] },
    'a bad op': { where: [{ path: 'total', op: 'like', value: 1 }] },
    'a where without value': { where: [{ path: 'total', op: 'eq' }] },
    'an unknown where field': { where: [{ path: 'total', op: 'eq', value: 1, not: true }] },
    'in without an array': { where: [{ path: 'total', op: 'in', value: 1 }] },
    'exists without a boolean': { where: [{ path: 'total', op: 'exists', value: 'yes' }] },
    'prefix without a string': { where: [{ path: 'total', op: 'prefix', value: 1 }] },
    'a bad direction': { orderBy: [{ path: 'total', direction: 'up' }] },
    'limit 0': { limit: 0 },
    'limit 1001': { limit: 1001 },
    'a string limit': { limit: '5' },
    'a filter that is not an object': { filter: [1] },
    'a malformed cursor': { cursor: 'not-a-cursor' },
    'count not a boolean': { count: 'yes' },
    'a body that is not an object': [],
  }
  for (const [name, body] of Object.entries(bodies)) {
    const res = await query('orders', body)
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().code, 'validation-failed', name)
  }
  t.match((await query('orders', bodies['a $. path'])).json().detail, /without the \$\. prefix/)
  t.equal((await query('orders', { limit: 1000 })).statusCode, 200, 'limit 1000 is allowed')
  for (const url of ['?filter={nope', '?filter=[1]', '?orderBy=$.total', '?orderBy=total:desc,', '?limit=0', '?limit=1001', '?cursor=%21%21', '?timeoutMs=30001&waitFor=1', '?waitFor=-1']) {
    const res = await get(`/projections/orders/documents${url}`)
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, 'validation-failed', url)
  }
  t.equal((await get('/projections/Bad%20Name/documents/x')).statusCode, 400, 'a bad projection name')
})

t.test('hostile paths, values and ids never produce a 5xx', async (t) => {
  const nasty = [`'; drop table projection_documents; --`, '"', '\\', '{a,b}', 'NULL', '%', 'a\u0000b', '\u0000']
  for (const text of nasty) {
    const responses = await Promise.all([
      query('orders', { where: [{ path: text, op: 'eq', value: text }] }),
      query('orders', { where: [{ path: 'status', op: 'in', value: [text, { [text]: text }] }] }),
      query('orders', { where: [{ path: 'status', op: 'prefix', value: text }] }),
      query('orders', { orderBy: [{ path: text }] }),
      query('orders', { filter: { [text]: text } }),
      get(`/projections/orders/documents?filter=${encodeURIComponent(JSON.stringify({ [text]: text }))}&orderBy=${encodeURIComponent(text)}`),
      get(`/projections/orders/documents/${encodeURIComponent(text)}`),
    ])
    for (const res of responses) t.ok([200, 400, 404].includes(res.statusCode), `${JSON.stringify(text)}: ${res.statusCode} ${res.body.slice(0, 120)}`)
    t.equal(responses.filter((res) => res.statusCode === 400).length > 0, text.includes('\u0000'), `NUL is refused as bad input (${JSON.stringify(text)})`)
  }
  t.equal((await get('/projections/orders/documents')).json().documents.length, 3, 'the documents are all still there')
})

t.test('waitFor waits for the live position, woken by progress, then reads', async (t) => {
  const { progress } = services
  const checked: number[] = []
  const liveProgress = progress.liveProgress.bind(progress)
  progress.liveProgress = async (name: string) => {
    const live = await liveProgress(name)
    if (name === 'orders' && live !== undefined) checked.push(live.position)
    return live
  }
  t.teardown(() => {
    progress.liveProgress = liveProgress
  })
  let settled = false
  const pending = get('/projections/orders/documents/order-1?waitFor=45&timeoutMs=30000').then((res) => {
    settled = true
    return res
  })
  await waitFor('the request to check the position', () => checked.length >= 1)
  progress.committed('orders')
  await waitFor('a wake-up that finds the position still short', () => checked.length >= 2)
  t.equal(settled, false, 'still waiting at position 40')
  await setLivePosition(sql, 'orders', 45)
  progress.committed('orders')
  const res = await pending
  t.equal(res.statusCode, 200)
  t.equal(res.json().id, 'order-1')
  t.equal(checked.at(-1), 45, 'it answered after seeing position 45')
  t.equal((await get('/projections/orders/documents/order-1?waitFor=45')).statusCode, 200, 'a position already reached answers at once')
})

t.test('waitFor that is not reached in timeoutMs is a 504 timeout on every document read', async (t) => {
  const reads = [
    get('/projections/orders/documents/order-1?waitFor=1000&timeoutMs=30'),
    get('/projections/orders/documents?waitFor=1000&timeoutMs=30'),
    query('orders', {}, { url: '/projections/orders/query?waitFor=1000&timeoutMs=30' }),
  ]
  for (const res of await Promise.all(reads)) {
    t.equal(res.statusCode, 504)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.match(res.json(), { code: 'timeout', status: 504, waitFor: 1000, position: 45 })
  }
  const started = Date.now()
  const missing = await get('/projections/nope/documents/x?waitFor=1000&timeoutMs=30000')
  t.equal(missing.statusCode, 404, 'an unknown projection is a 404 at once, not a wait')
  t.ok(Date.now() - started < 10_000)
})
