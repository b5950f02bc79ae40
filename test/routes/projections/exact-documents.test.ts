import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from '../../helpers/test-app.js'
import { streamId } from '../../helpers/fixtures.js'
import { waitFor } from '../../helpers/wait-for.js'

// Issue 16, SPEC "Details": declarative set, push and merge copy values exactly (inc in double precision);
// field names may not hold __proto__, constructor or prototype; event types match handlers by own names.
const NUMBERS = '{"big":12345678901234567890123,"huge":1e400,"tiny":1e-400,"dec":0.1000000000000000000000001,"edge":9007199254740993,"one":1.0}'

const { app } = await buildTestApp(t)
const appendText = (app: FastifyInstance, id: string, body: string) =>
  app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body, headers: { 'content-type': 'application/json' } })
const put = (name: string, definition: unknown) => app.inject({ method: 'PUT', url: `/projections/${name}`, payload: definition as object })
const documentText = (name: string, id: string) =>
  waitFor(`${name}/${id}`, async () => {
    const res = await app.inject({ url: `/projections/${name}/documents/${id}` })
    return res.statusCode === 200 && res.body
  })

t.test('set, push and merge copy numbers exactly; document reads give them back exactly', async (t) => {
  const definition = {
    source: { categories: ['exact'] },
    documentId: '$.streamId',
    handlers: {
      Measured: { set: { values: '$.data' }, push: { history: '$.data.edge' }, merge: '$.data', inc: { count: '$.data.one' } },
    },
  }
  t.equal((await put('exact', definition)).statusCode, 201)
  const id = streamId('exact')
  t.equal((await appendText(app, id, `{"events":[{"type":"Measured","data":${NUMBERS}}]}`)).statusCode, 201)
  const body = await documentText('exact', id)
  // jsonb keeps numeric values: 1e400 reads back as its digits, 1e-400 as its decimal
  const huge = `1${'0'.repeat(400)}`
  const tiny = `0.${'0'.repeat(399)}1`
  const document = JSON.parse(body.replace(/(-?\d[\d.eE+-]{15,})/g, '"$1"')).document
  t.equal(document.values.big, '12345678901234567890123')
  t.equal(document.values.edge, '9007199254740993')
  t.equal(document.values.dec, '0.1000000000000000000000001')
  t.equal(document.values.huge, huge)
  t.equal(document.values.tiny, tiny)
  t.same(document.history, ['9007199254740993'])
  t.equal(document.edge, '9007199254740993')
  t.equal(document.count, 1)
  t.ok(body.includes('"one":1.0'), body.slice(0, 300))
  const query = await app.inject({ method: 'POST', url: '/projections/exact/query', payload: {} })
  t.ok(query.body.includes('"edge":9007199254740993'), query.body.slice(0, 300))
  // a second event keeps the numbers already in the document exactly
  t.equal((await appendText(app, id, '{"events":[{"type":"Measured","data":{"one":2}}]}')).statusCode, 201)
  const again = await waitFor('second event', async () => {
    const text = await documentText('exact', id)
    return text.includes('"count":3') && text
  })
  t.ok(again.includes('"big":12345678901234567890123'), again.slice(0, 300))
})

t.test('a merge of event data holding __proto__ writes a __proto__ field; nothing reaches a prototype', async (t) => {
  const definition = { source: { categories: ['keys'] }, documentId: '$.streamId', handlers: { Keys: { merge: '$.data' } } }
  t.equal((await put('keys', definition)).statusCode, 201)
  const id = streamId('keys')
  t.equal((await appendText(app, id, '{"events":[{"type":"Keys","data":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":1}}}]}')).statusCode, 201)
  const body = await documentText('keys', id)
  t.ok(body.includes('"document":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":1}}'), body)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('definitions whose field names hold __proto__, constructor or prototype are a 400 and pollute nothing', async (t) => {
  const handlers = [
    { set: { '__proto__.polluted': 'yes' } },
    { set: { 'a.constructor.prototype.polluted': 'yes' } },
    { unset: ['__proto__.toString'] },
    { inc: { 'prototype': 1 } },
    { push: { 'x.__proto__': 1 } },
    { merge: { ['__proto__']: 1 } },
  ]
  for (const [index, handler] of handlers.entries()) {
    const merge = handler.merge ? { merge: JSON.parse('{"__proto__":{"polluted":"yes"}}') } : {}
    const res = await put(`pp${index}`, { source: { categories: ['pp'] }, documentId: '$.streamId', handlers: { Hit: { ...handler, ...merge } } })
    t.equal(res.statusCode, 400, JSON.stringify(handler))
    t.equal(res.json().code, 'validation-failed')
  }
  t.equal((await appendText(app, streamId('pp'), '{"events":[{"type":"Hit","data":{}}]}')).statusCode, 201)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200)
  t.equal((await put('after', { source: { categories: ['after'] }, documentId: '$.streamId', handlers: { X: { set: { x: 1 } } } })).statusCode, 201)
})

t.test('event types named like Object.prototype members are ignored when no handler names them', async (t) => {
  const definition = { source: { categories: ['proto'] }, documentId: '$.streamId', handlers: { Named: { set: { x: 1 } } } }
  t.equal((await put('proto', definition)).statusCode, 201)
  const id = streamId('proto')
  for (const type of ['toString', 'constructor', 'hasOwnProperty', 'Named']) {
    t.equal((await appendText(app, id, `{"events":[{"type":"${type}","data":{}}]}`)).statusCode, 201, type)
  }
  t.ok((await documentText('proto', id)).includes('"document":{"x":1}'))
  const view = await waitFor('proto caught up', async () => {
    const res = (await app.inject({ url: '/projections/proto' })).json()
    return res.lag === 0 && res
  })
  t.equal(view.status, 'running')
})
