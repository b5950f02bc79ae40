import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { InjectOptions } from 'fastify'
import { OpenapiContract, operations } from '../helpers/openapi-contract.js'
import { fillPath, roleOf } from '../helpers/operation-request.js'
import { SseClient } from '../helpers/sse-client.js'
import { buildTestApp } from '../helpers/test-app.js'
import { waitFor } from '../helpers/wait-for.js'

// Tenant isolation in depth (SPEC "Conventions"): tenant beta's streams, events, snapshots and documents carry a
// marker; tenant alpha walks every operation of openapi.yaml with beta's ids and never sees the marker, and
// beta's data is the same afterwards.
const contract = await OpenapiContract.load()
const ALPHA = 'alpha-admin-key-2b9e'
const BETA = 'beta-admin-key-77c0'
const { app } = await buildTestApp(t, { API_KEYS: `${ALPHA}:alpha:admin,${BETA}:beta:admin`, SUBSCRIBE_HEARTBEAT_MS: '50' })
const MARKER = `beta-secret-${randomUUID()}`
const STREAM = `order-${randomUUID().slice(0, 8)}`
const CORRELATION = randomUUID()
const asAlpha = { authorization: `Bearer ${ALPHA}` }
const asBeta = { authorization: `Bearer ${BETA}` }

const inject = (headers: Record<string, string>, options: InjectOptions) => app.inject({ ...options, headers: { ...headers, ...options.headers } })

// what beta can see of its own data, to compare before and after alpha's walk
const betaView = async () => ({
  stream: (await inject(asBeta, { url: `/streams/${STREAM}/events` })).json(),
  snapshots: (await inject(asBeta, { url: `/streams/${STREAM}/snapshots` })).json(),
  document: (await inject(asBeta, { url: `/projections/orders/documents/${STREAM}` })).json(),
})

let before: Awaited<ReturnType<typeof betaView>>

t.test('beta writes events, a snapshot and a projection document, each carrying the marker', async (t) => {
  const definition = { source: { categories: ['order'] }, documentId: '$.streamId', handlers: { OrderPlaced: { set: { secret: '$.data.secret' } } } }
  t.equal((await inject(asBeta, { method: 'PUT', url: '/projections/orders', payload: definition })).statusCode, 201)
  t.equal((await inject(asBeta, {
    method: 'POST',
    url: `/streams/${STREAM}/events`,
    payload: { events: [{ type: 'OrderPlaced', data: { secret: MARKER }, metadata: { correlationId: CORRELATION, note: MARKER } }] },
  })).statusCode, 201)
  t.equal((await inject(asBeta, { method: 'PUT', url: `/streams/${STREAM}/snapshots/1`, payload: { state: { secret: MARKER } } })).statusCode, 201)
  await waitFor('beta’s document', async () => (await inject(asBeta, { url: `/projections/orders/documents/${STREAM}` })).statusCode === 200 || undefined)
  before = await betaView()
  t.match(JSON.stringify(before), MARKER, 'beta sees its own data')
})

// beta's ids in every path parameter; admin operations that change global state get a name of their own
const valuesFor = (method: string, path: string) =>
  roleOf(method, path) === 'admin' && method !== 'get' ? { streamId: STREAM, name: 'unrelated', type: 'Unrelated' } : { streamId: STREAM, name: 'orders', id: STREAM, type: 'OrderPlaced' }

const QUERIES: Record<string, string[]> = {
  '/events': ['', `?correlationId=${CORRELATION}`, '?category=order', `?streamId=${STREAM}`, '?type=OrderPlaced'],
  '/streams': ['', '?category=order', '?prefix=order-'],
  '/projections/{name}/documents': ['', '?limit=1000'],
  '/streams/{streamId}/snapshots/latest': ['', '?atOrBefore=1'],
  '/streams/{streamId}/load': ['', '?untilVersion=1'],
}

t.test('alpha walks every operation with beta’s ids and finds nothing of beta', async (t) => {
  let requests = 0
  // reads first, then writes, so a write by alpha cannot hide a read that would leak
  const ops = operations(contract.doc).filter(({ path }) => path !== '/subscribe')
  const ordered = [...ops.filter(({ method }) => method === 'get'), ...ops.filter(({ method }) => method !== 'get')]
  for (const { path, method } of ordered) {
    for (const query of QUERIES[path] ?? ['']) {
      const payload = path === '/projections/{name}/query' ? { where: { secret: { eq: MARKER } } } : ['post', 'put'].includes(method) ? {} : undefined
      const res = await inject(asAlpha, { method: method.toUpperCase() as 'GET', url: fillPath(path, valuesFor(method, path)) + query, ...(payload ? { payload } : {}) })
      requests += 1
      t.ok(res.statusCode < 500, `${method.toUpperCase()} ${path}${query} → ${res.statusCode}`)
      t.notMatch(res.body, MARKER, `${method.toUpperCase()} ${path}${query} shows nothing of beta`)
      t.notMatch(res.body, CORRELATION)
    }
  }
  const read = (url: string) => inject(asAlpha, { url })
  t.equal((await read(`/streams/${STREAM}/events`)).statusCode, 404, 'beta’s stream is not alpha’s')
  t.equal((await read(`/streams/${STREAM}/snapshots/latest`)).statusCode, 404)
  t.equal((await read(`/projections/orders/documents/${STREAM}`)).statusCode, 404)
  t.same((await read(`/events?correlationId=${CORRELATION}`)).json().events, [])
  t.same((await inject(asAlpha, { method: 'POST', url: '/projections/orders/query', payload: {} })).json().documents, [])
  t.ok(requests >= ops.length, `${requests} requests as alpha`)
})

t.test('alpha writing to the same stream id writes its own stream, not beta’s', async (t) => {
  const append = await inject(asAlpha, { method: 'POST', url: `/streams/${STREAM}/events`, payload: { expectedVersion: 'no_stream', events: [{ type: 'OrderPlaced', data: { secret: 'alpha' } }] } })
  t.equal(append.statusCode, 201, 'no_stream holds for alpha: beta’s stream is not there')
  t.equal((await inject(asAlpha, { method: 'PUT', url: `/streams/${STREAM}/snapshots/1`, payload: { state: { secret: 'alpha' } } })).statusCode, 201)
  await waitFor('alpha’s document', async () => (await inject(asAlpha, { url: `/projections/orders/documents/${STREAM}` })).json().document?.secret === 'alpha' || undefined)
})

t.test('a subscription as alpha replays and streams none of beta’s events', async (t) => {
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const sse = await SseClient.open(address, '/subscribe?category=order', asAlpha)
  t.teardown(() => sse.close())
  t.equal(sse.status, 200)
  // beta appends while alpha listens; alpha's own append after it is the mark that the live feed has passed it
  await inject(asBeta, { method: 'POST', url: `/streams/${STREAM}/events`, payload: { events: [{ type: 'OrderPlaced', data: { secret: MARKER } }] } })
  const mark = randomUUID()
  await inject(asAlpha, { method: 'POST', url: `/streams/${STREAM}/events`, payload: { events: [{ type: 'OrderPlaced', data: { secret: mark } }] } })
  await waitFor('alpha’s own event', () => sse.messages.some((message) => message.data.includes(mark)) || undefined)
  t.notMatch(sse.messages.map((message) => message.data).join('\n'), MARKER, 'nothing of beta, replayed or live')
  t.equal(sse.events.length, 2, 'alpha’s two events only')
})

t.test('beta’s data is as it was', async (t) => {
  const after = await betaView()
  t.same(after.snapshots, before.snapshots)
  // beta's own second append (during the subscription) moved the document's version, not its content
  t.same(after.document.document, before.document.document)
  t.same(after.stream.events[0], before.stream.events[0], 'beta’s first event is unchanged')
  t.equal(after.stream.version, 2, 'and its stream holds only beta’s appends')
})
