import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { event, events, streamId, withId } from '../helpers/fixtures.js'
import { OpenapiContract, operations } from '../helpers/openapi-contract.js'
import { buildBrokenApp, LEAKS } from '../helpers/broken-app.js'
import { buildTestApp } from '../helpers/test-app.js'

// Drives every operation of openapi.yaml through app.inject and checks each answer against the document:
// status documented, x-request-id present, problems as application/problem+json, body valid for its schema.
const contract = await OpenapiContract.load()
const { app, config } = await buildTestApp(t)

const APPEND = '/streams/{streamId}/events'
const READ = '/streams/{streamId}/events'
const STREAM = '/streams/{streamId}'
const APPENDS = '/appends'

type Options = InjectOptions & { url: string }

const callOn = (target: FastifyInstance) => async (t: Test, path: string, options: Options) => {
  const res = await target.inject(options)
  contract.check(t, String(options.method ?? 'GET'), path, res)
  return res
}
const call = callOn(app)

const append = (t: Test, id: string, payload: unknown, headers: Record<string, string> = {}) =>
  call(t, APPEND, { method: 'POST', url: `/streams/${id}/events`, payload: payload as object, headers })

// /events serves only up to the gap-safe head, which any open transaction on the server may hold back briefly.
const waitForHead = async (position: number): Promise<void> => {
  for (let tries = 0; tries < 100; tries += 1) {
    if ((await app.inject({ url: '/events?limit=1' })).json().head >= position) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`head did not reach ${position}`)
}

// exercised by test/contract/projections.test.ts
export const PROJECTION_MANAGEMENT = /^\/projections(\/\{name\}(\/(start|stop|restart|skip|reset))?)?$/
// exercised by test/contract/documents.test.ts
const DOCUMENT_READS = /^\/projections\/\{name\}\/(documents|query)/
// snapshots, load, /subscribe, /upcasters and /subjects: test/contract/snapshots.test.ts, subscribe.test.ts, upcasters.test.ts, subjects.test.ts
// backfills, rollback and projection snapshots have contract files of their own
const PROJECTION_RUNS = /^\/projections\/\{name\}\/(backfills|rollback|snapshots)/
const HISTORY = /^\/(streams\/\{streamId\}\/(snapshots|load)|subscribe|upcasters|subjects)/
// exercised by test/contract/consumer-groups.test.ts
const CONSUMER_GROUPS = /^\/consumer-groups/

const codeOf = (res: { json: () => unknown }): unknown => (res.json() as { code?: unknown }).code

t.test('an append answers 201, and its exact retry 200 with duplicate: true', async (t) => {
  const id = streamId()
  const body = { expectedVersion: 'no_stream', events: [withId(event()), withId(event('ItemAdded', { sku: 'A' }, { metadata: { correlationId: 'c-1' } }))] }
  const first = await append(t, id, body)
  t.equal(first.statusCode, 201)
  const retry = await append(t, id, body)
  t.equal(retry.statusCode, 200)
  t.same(retry.json(), { ...first.json(), duplicate: true })
})

t.test('a stale expectedVersion gets 409 wrong-expected-version echoing it as sent', async (t) => {
  const id = streamId()
  t.equal((await append(t, id, { events: events(2) })).statusCode, 201)
  for (const expectedVersion of [0, 1, 'no_stream']) {
    const res = await append(t, id, { expectedVersion, events: events(1) })
    t.equal(res.statusCode, 409)
    t.match(res.json(), { code: 'wrong-expected-version', expectedVersion, currentVersion: 2 })
  }
})

t.test('event ids stored on another stream get 409 duplicate-event-id', async (t) => {
  const stored = withId(event())
  t.equal((await append(t, streamId(), { events: [stored] })).statusCode, 201)
  const res = await append(t, streamId(), { events: [stored] })
  t.equal(res.statusCode, 409)
  t.equal(codeOf(res), 'duplicate-event-id')
})

t.test('malformed appends get 400 validation-failed', async (t) => {
  const eventId = randomUUID()
  const bodies: Record<string, unknown> = {
    'an unknown field': { events: events(1), extra: true },
    'an event without data': { events: [{ type: 'A' }] },
    'a bad event type': { events: [event('not a type')] },
    'no events': { events: [] },
    'too many events': { events: events(config.MAX_EVENTS_PER_APPEND + 1) },
    'the same eventId twice': { events: [event('A', 1, { eventId }), event('B', 2, { eventId })] },
    'an unknown expectedVersion word': { expectedVersion: 'latest', events: events(1) },
    'a negative expectedVersion': { expectedVersion: -1, events: events(1) },
  }
  for (const [name, body] of Object.entries(bodies)) {
    const res = await append(t, streamId(), body)
    t.equal(res.statusCode, 400, name)
    t.equal(codeOf(res), 'validation-failed', name)
  }
  const malformed = await call(t, APPEND, { method: 'POST', url: `/streams/${streamId()}/events`, payload: '{"events": [', headers: { 'content-type': 'application/json' } })
  t.equal(malformed.statusCode, 400, 'malformed JSON')
  t.equal((await append(t, 'a%20b', { events: events(1) })).statusCode, 400, 'a bad stream id')
})

t.test('a body of exactly MAX_BODY_BYTES is accepted; one byte more gets 413; a non-JSON body gets 415', async (t) => {
  const shell = JSON.stringify({ events: [{ type: 'Padded', data: '' }] })
  const exact = shell.replace('""', `"${'x'.repeat(config.MAX_BODY_BYTES - shell.length)}"`)
  const headers = { 'content-type': 'application/json' }
  const url = `/streams/${streamId()}/events`
  t.equal((await call(t, APPEND, { method: 'POST', url, payload: exact, headers })).statusCode, 201)
  const large = await call(t, APPEND, { method: 'POST', url, payload: exact + ' ', headers })
  t.equal(large.statusCode, 413)
  t.equal(codeOf(large), 'payload-too-large')
  const xml = await call(t, APPEND, { method: 'POST', url, payload: '<events/>', headers: { 'content-type': 'application/xml' } })
  t.equal(xml.statusCode, 415)
  t.equal(codeOf(xml), 'unsupported-media-type')
})

t.test('POST /appends answers 201, its retry 200, conflicts 409, and bad bodies 400, 413 and 415', async (t) => {
  const [a, b] = [streamId(), streamId()]
  const send = (payload: unknown, headers: Record<string, string> = {}) => call(t, APPENDS, { method: 'POST', url: APPENDS, payload: payload as object, headers })
  const body = { appends: [{ streamId: a, expectedVersion: 'no_stream', events: [withId(event())] }, { streamId: b, events: [withId(event()), withId(event())] }] }
  const first = await send(body)
  t.equal(first.statusCode, 201)
  t.same((await send(body)).json(), { ...first.json(), duplicate: true })
  const stale = await send({ appends: [{ streamId: a, expectedVersion: 0, events: events(1) }, { streamId: b, expectedVersion: 2, events: events(1) }] })
  t.equal(stale.statusCode, 409)
  t.same(stale.json().conflicts, [{ streamId: a, expectedVersion: 0, currentVersion: 1 }])
  const moved = await send({ appends: [body.appends[1], body.appends[0]] })
  t.equal(codeOf(moved), 'duplicate-event-id')
  t.equal((await send({ appends: [{ streamId: a, events: events(1) }, { streamId: a, events: events(1) }] })).statusCode, 400)
  const huge = await send({ appends: [{ streamId: a, events: [event('A', 'x'.repeat(config.MAX_BODY_BYTES))] }] })
  t.equal(huge.statusCode, 413)
  t.equal((await call(t, APPENDS, { method: 'POST', url: APPENDS, payload: 'hello', headers: { 'content-type': 'text/plain' } })).statusCode, 415)
})

t.test('stream reads page forward and backward, and a stream describes itself', async (t) => {
  const id = streamId()
  await append(t, id, { events: events(5) })
  const forward = await call(t, READ, { url: `/streams/${id}/events?limit=2` })
  t.match(forward.json(), { streamId: id, version: 5, next: 3 })
  t.same(forward.json().events.map((e: { streamVersion: number }) => e.streamVersion), [1, 2])
  const backward = await call(t, READ, { url: `/streams/${id}/events?direction=backward&limit=2` })
  t.same(backward.json().events.map((e: { streamVersion: number }) => e.streamVersion), [5, 4])
  t.equal(backward.json().next, 3)
  const past = await call(t, READ, { url: `/streams/${id}/events?from=99` })
  t.match(past.json(), { events: [], next: null })
  const before = await call(t, READ, { url: `/streams/${id}/events?until=2000-01-01T00:00:00Z` })
  t.equal(before.statusCode, 404)
  t.equal(codeOf(before), 'stream-not-found')
  const info = await call(t, STREAM, { url: `/streams/${id}` })
  t.match(info.json(), { streamId: id, category: 'order', version: 5, snapshot: null })
  t.equal((await call(t, READ, { url: `/streams/${streamId()}/events` })).statusCode, 404)
  t.equal((await call(t, STREAM, { url: `/streams/${streamId()}` })).statusCode, 404)
  t.equal((await call(t, READ, { url: `/streams/${id}/events?limit=1001` })).statusCode, 400)
  t.equal((await call(t, READ, { url: `/streams/${id}/events?direction=sideways` })).statusCode, 400)
  t.equal((await call(t, STREAM, { url: '/streams/a%20b' })).statusCode, 400)
})

t.test('system streams are global: written once, read under any tenant', async (t) => {
  const id = `$contract-${randomUUID().slice(0, 8)}`
  const written = await append(t, encodeURIComponent(id), { events: events(1, 'ContractChecked') }, { 'x-tenant-id': 'acme' })
  t.equal(written.statusCode, 201)
  const read = await call(t, READ, { url: `/streams/${id}/events`, headers: { 'x-tenant-id': 'other' } })
  t.equal(read.json().events[0]?.streamId, id)
  t.equal((await call(t, STREAM, { url: `/streams/${id}` })).statusCode, 200)
  const listed = await call(t, '/streams', { url: '/streams?prefix=%24contract-' })
  t.same(listed.json().streams.map((s: { streamId: string }) => s.streamId), [id])
  await waitForHead(written.json().lastPosition)
  const log = await call(t, '/events', { url: '/events?streamId=%24contract-', headers: { 'x-tenant-id': 'other' } })
  t.same(log.json().events.map((e: { streamId: string }) => e.streamId), [id])
})

t.test('stream lists page by id and filter by category and prefix', async (t) => {
  const tenant = { 'x-tenant-id': 'lists' }
  for (const id of ['cart-1', 'cart-2', 'user-1']) await append(t, id, { events: events(1) }, tenant)
  const first = await call(t, '/streams', { url: '/streams?category=cart&limit=1', headers: tenant })
  t.same(first.json(), { streams: [first.json().streams[0]], next: 'cart-1' })
  const rest = await call(t, '/streams', { url: `/streams?category=cart&after=${first.json().next}`, headers: tenant })
  t.match(rest.json(), { streams: [{ streamId: 'cart-2', category: 'cart', version: 1 }], next: null })
  const prefixed = await call(t, '/streams', { url: '/streams?prefix=user', headers: tenant })
  t.equal(prefixed.json().streams.length, 1)
  t.equal((await call(t, '/streams', { url: '/streams?limit=0' })).statusCode, 400)
})

t.test('the global log filters, pages and reports its gap-safe head', async (t) => {
  const tenant = { 'x-tenant-id': 'log' }
  const since = new Date(Date.now() - 60_000).toISOString()
  await append(t, 'invoice-1', { events: [event('Issued'), event('Paid', {}, { metadata: { correlationId: 'pay-1' } })] }, tenant)
  await waitForHead((await append(t, 'refund-1', { events: [event('Issued')] }, tenant)).json().lastPosition)
  const page = await call(t, '/events', { url: '/events?limit=1', headers: tenant })
  t.equal(page.json().events.length, 1)
  t.equal(page.json().next, page.json().events[0].globalPosition)
  const rest = await call(t, '/events', { url: `/events?after=${page.json().next}`, headers: tenant })
  t.equal(rest.json().events.length, 2)
  t.equal(rest.json().next, null)
  t.ok(rest.json().head >= rest.json().events[1].globalPosition, 'head covers every event returned')
  const filtered: Record<string, number> = {
    'type=Issued&type=Paid': 3,
    'type=Paid': 1,
    'category=refund': 1,
    'streamId=invoice': 2,
    [`since=${since}&until=${new Date(Date.now() + 60_000).toISOString()}`]: 3,
    'correlationId=pay-1': 1,
  }
  for (const [query, count] of Object.entries(filtered)) {
    const res = await call(t, '/events', { url: `/events?${query}`, headers: tenant })
    t.equal(res.json().events.length, count, query)
  }
  t.equal((await call(t, '/events', { url: '/events?after=-1' })).statusCode, 400)
  t.equal((await call(t, '/events', { url: '/events?since=yesterday' })).statusCode, 400)
})

t.test('health, docs and the document answer as documented', async (t) => {
  t.match((await call(t, '/health/live', { url: '/health/live' })).json(), { status: 'ok' })
  t.match((await call(t, '/health/ready', { url: '/health/ready' })).json(), { status: 'ok' })
  t.same((await call(t, '/openapi.json', { url: '/openapi.json' })).json(), contract.doc)
  t.equal((await call(t, '/docs', { url: '/docs' })).statusCode, 200)
  t.equal((await app.inject({ url: '/docs/' })).statusCode, 404, 'a trailing slash is another path')
  t.equal((await call(t, '/docs/json', { url: '/docs/json' })).statusCode, 200)
  t.equal((await call(t, '/docs/yaml', { url: '/docs/yaml' })).statusCode, 200)
  t.equal((await call(t, '/docs/static/index.html', { url: '/docs/static/index.html' })).headers.location, '/docs')
  t.equal((await call(t, '/docs/static/swagger-initializer.js', { url: '/docs/static/swagger-initializer.js' })).statusCode, 200)
  t.equal((await call(t, '/docs/static/theme/annalist.css', { url: '/docs/static/theme/annalist.css' })).statusCode, 200)
  t.equal((await call(t, '/docs/static/theme/annalist.svg', { url: '/docs/static/theme/annalist.svg' })).statusCode, 200)
  t.equal((await call(t, '/docs/static/{file}', { url: '/docs/static/swagger-ui.css' })).statusCode, 200)
  t.equal((await call(t, '/docs/static/{file}', { url: '/docs/static/no-such-file.css' })).statusCode, 404)
})

t.test('the dashboard page and its assets answer as documented', async (t) => {
  const page = await call(t, '/', { url: '/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-security-policy'], /default-src 'self'/)
  t.equal((await call(t, '/dashboard.js', { url: '/dashboard.js' })).statusCode, 200)
  t.equal((await call(t, '/dashboard.css', { url: '/dashboard.css' })).statusCode, 200)
  t.equal((await call(t, '/dashboard/{module}', { url: '/dashboard/format.js' })).statusCode, 200)
  t.equal((await call(t, '/dashboard/{module}', { url: '/dashboard/nope.js' })).statusCode, 404)
  t.equal((await call(t, '/dashboard/{module}', { url: '/dashboard/..%2Fpackage.json' })).statusCode, 404)
})

t.test('a method or path outside the document gets a 404 not-found problem', async (t) => {
  for (const [method, url] of [['GET', '/nowhere'], ['DELETE', '/streams/order-1'], ['PUT', '/events'], ['POST', '/'], ['GET', '/dashboard']] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.type(res.headers['x-request-id'], 'string')
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.notOk(contract.validate('#/components/schemas/NotFoundProblem', res.json()))
    t.equal(codeOf(res), 'not-found')
  }
})

const fill = (path: string): string =>
  path.replace('{streamId}', 'order-1').replace('{file}', 'swagger-ui.css').replace('{version}', '1').replace('{type}', 'OrderPlaced')
const BODIES: Record<string, object> = { post: { events: events(1) }, put: { state: {} } }
const bodyFor = (method: string, path = ''): { payload?: object } =>
  path === APPENDS ? { payload: { appends: [{ streamId: 'order-1', events: events(1) }] } } : BODIES[method] ? { payload: BODIES[method] } : {}

t.test('a malformed X-Tenant-Id is 400 on every operation', async (t) => {
  for (const { path, method } of operations(contract.doc)) {
    const res = await call(t, path, { method: method.toUpperCase() as 'GET', url: fill(path), headers: { 'x-tenant-id': 'Not A Tenant' }, ...bodyFor(method, path) })
    t.equal(res.statusCode, 400, `${method} ${path}`)
  }
})

t.test('an unready server says 503, and a database failure is a generic 500', async (t) => {
  const callBroken = callOn(await buildBrokenApp(t, contract.doc))
  t.match((await callBroken(t, '/health/ready', { url: '/health/ready' })).json(), { status: 'unavailable' })
  for (const { path, method } of operations(contract.doc).filter((op) => /^\/(streams|events|appends)/.test(op.path))) {
    const res = await callBroken(t, path, { method: method.toUpperCase() as 'GET', url: fill(path), ...bodyFor(method, path) })
    t.equal(res.statusCode, 500, `${method} ${path}`)
    t.notMatch(res.body, LEAKS, 'no database details leak')
  }
})

t.test('a stream id of 256 characters is served, and 257 is a 400', async (t) => {
  const id = 'a'.repeat(256)
  t.equal((await append(t, id, { events: events(1) })).statusCode, 201)
  t.equal((await call(t, READ, { url: `/streams/${id}/events` })).statusCode, 200)
  t.equal((await call(t, READ, { url: `/streams/${id}a/events` })).statusCode, 400)
})

t.test('a text/plain body gets 415 unsupported-media-type', async (t) => {
  const res = await call(t, APPEND, { method: 'POST', url: `/streams/${streamId()}/events`, payload: 'hello', headers: { 'content-type': 'text/plain' } })
  t.equal(res.statusCode, 415)
  t.equal(codeOf(res), 'unsupported-media-type')
})

t.test('a URL the router cannot decode gets a 400 problem with x-request-id', async (t) => {
  for (const url of ['/streams/%zz/events', `/streams/${'a'.repeat(1100)}`]) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 400, url.slice(0, 30))
    t.type(res.headers['x-request-id'], 'string')
    t.match(res.headers['content-type'], /^application\/problem\+json/)
  }
})

t.test('every status openapi.yaml documents was produced by some request above', async (t) => {
  // /metrics: test/contract/metrics.test.ts
  t.same(contract.unexercised((path) => !PROJECTION_MANAGEMENT.test(path) && !DOCUMENT_READS.test(path) && !HISTORY.test(path) && !PROJECTION_RUNS.test(path) && !CONSUMER_GROUPS.test(path) && path !== '/metrics'), [])
})
