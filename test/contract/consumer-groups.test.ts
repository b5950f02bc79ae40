import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { buildBrokenApp, LEAKS } from '../helpers/broken-app.js'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildTestApp } from '../helpers/test-app.js'

// /consumer-groups, checked against openapi.yaml like every other route.
const contract = await OpenapiContract.load()
const { app, config } = await buildTestApp(t)

const LIST = '/consumer-groups'
const ONE = '/consumer-groups/{name}'
const POLL = '/consumer-groups/{name}/poll'
const ACK = '/consumer-groups/{name}/ack'
const NACK = '/consumer-groups/{name}/nack'
const PARKED = '/consumer-groups/{name}/parked'
const REPLAY = '/consumer-groups/{name}/parked/replay'
const PARKED_ONE = '/consumer-groups/{name}/parked/{eventId}'

const callOn = (target: FastifyInstance) => async (t: Test, path: string, options: InjectOptions & { url: string }) => {
  const res = await target.inject(options)
  contract.check(t, String(options.method ?? 'GET'), path, res)
  return res
}
const call = callOn(app)

t.test('a group is created, changed, polled, acked, nacked, parked, replayed and deleted', async (t) => {
  await app.inject({ method: 'POST', url: '/streams/order-1/events', payload: { events: [{ type: 'OrderPlaced', data: { total: 1 } }, { type: 'OrderPlaced', data: { total: 2 } }] } })
  t.equal((await call(t, ONE, { method: 'PUT', url: '/consumer-groups/billing', payload: { source: { categories: ['order'] }, maxDeliveries: 1 } })).statusCode, 201)
  t.equal((await call(t, ONE, { method: 'PUT', url: '/consumer-groups/billing', payload: { ackTimeoutMs: 60000 } })).statusCode, 200)
  t.match((await call(t, ONE, { method: 'PUT', url: '/consumer-groups/billing', payload: { start: 'end' } })).json(), { code: 'conflict', start: 'beginning' })
  t.equal((await call(t, LIST, { url: LIST })).statusCode, 200)
  t.equal((await call(t, ONE, { url: '/consumer-groups/billing' })).statusCode, 200)
  const [first, second] = (await call(t, POLL, { method: 'POST', url: '/consumer-groups/billing/poll?max=2' })).json().events
  t.same((await call(t, ACK, { method: 'POST', url: '/consumer-groups/billing/ack', payload: { eventIds: [second.eventId] } })).json(), { acked: 1, ignored: 0 })
  t.same((await call(t, NACK, { method: 'POST', url: '/consumer-groups/billing/nack', payload: { eventIds: [first.eventId], error: 'no' } })).json(), { nacked: 1, ignored: 0 })
  t.match((await call(t, PARKED, { url: '/consumer-groups/billing/parked' })).json(), { events: [{ eventId: first.eventId, lastError: 'no' }], next: null })
  t.same((await call(t, REPLAY, { method: 'POST', url: '/consumer-groups/billing/parked/replay', payload: { eventIds: [first.eventId] } })).json(), { replayed: 1 })
  const [again] = (await call(t, POLL, { method: 'POST', url: '/consumer-groups/billing/poll' })).json().events
  await call(t, NACK, { method: 'POST', url: '/consumer-groups/billing/nack', payload: { eventIds: [again.eventId] } })
  t.equal((await call(t, PARKED_ONE, { method: 'DELETE', url: `/consumer-groups/billing/parked/${first.eventId}` })).statusCode, 204)
  t.match((await call(t, PARKED_ONE, { method: 'DELETE', url: `/consumer-groups/billing/parked/${first.eventId}` })).json(), { code: 'not-found', eventId: first.eventId })
  t.equal((await call(t, ONE, { method: 'DELETE', url: '/consumer-groups/billing' })).statusCode, 204)
})

t.test('an unknown group is 404 consumer-group-not-found on every route', async (t) => {
  const id = randomUUID()
  for (const [path, options] of [
    [ONE, { url: '/consumer-groups/nope' }],
    [ONE, { method: 'DELETE', url: '/consumer-groups/nope' }],
    [POLL, { method: 'POST', url: '/consumer-groups/nope/poll' }],
    [ACK, { method: 'POST', url: '/consumer-groups/nope/ack', payload: { eventIds: [id] } }],
    [NACK, { method: 'POST', url: '/consumer-groups/nope/nack', payload: { eventIds: [id] } }],
    [PARKED, { url: '/consumer-groups/nope/parked' }],
    [REPLAY, { method: 'POST', url: '/consumer-groups/nope/parked/replay' }],
    [PARKED_ONE, { method: 'DELETE', url: `/consumer-groups/nope/parked/${id}` }],
  ] as const) {
    t.match((await call(t, path, options)).json(), { code: 'consumer-group-not-found', name: 'nope' })
  }
})

t.test('bad input is 400, a body too large 413, another media type 415', async (t) => {
  await app.inject({ method: 'PUT', url: '/consumer-groups/g', payload: {} })
  const bad = (path: string, options: InjectOptions & { url: string }) => call(t, path, options).then((res) => t.equal(res.statusCode, 400, options.url))
  await bad(LIST, { url: LIST, headers: { 'x-tenant-id': 'Not A Tenant' } })
  await bad(ONE, { url: '/consumer-groups/Nope' })
  await bad(ONE, { method: 'PUT', url: '/consumer-groups/g', payload: { maxDeliveries: 0 } })
  await bad(ONE, { method: 'DELETE', url: '/consumer-groups/Nope' })
  await bad(POLL, { method: 'POST', url: '/consumer-groups/g/poll?max=0' })
  await bad(ACK, { method: 'POST', url: '/consumer-groups/g/ack', payload: { eventIds: ['x'] } })
  await bad(NACK, { method: 'POST', url: '/consumer-groups/g/nack', payload: { eventIds: [randomUUID()], retryAfterMs: -1 } })
  await bad(PARKED, { url: '/consumer-groups/g/parked?limit=0' })
  await bad(REPLAY, { method: 'POST', url: '/consumer-groups/g/parked/replay', payload: { eventIds: [] } })
  await bad(PARKED_ONE, { method: 'DELETE', url: '/consumer-groups/g/parked/not-a-uuid' })
  const large = JSON.stringify({ eventIds: [randomUUID()], pad: 'x'.repeat(config.MAX_BODY_BYTES) })
  for (const [path, url, method] of [[ONE, '/consumer-groups/g', 'PUT'], [ACK, '/consumer-groups/g/ack', 'POST'], [NACK, '/consumer-groups/g/nack', 'POST'], [REPLAY, '/consumer-groups/g/parked/replay', 'POST']] as const) {
    t.equal((await call(t, path, { method, url, payload: large, headers: { 'content-type': 'application/json' } })).statusCode, 413)
    t.equal((await call(t, path, { method, url, payload: 'x', headers: { 'content-type': 'text/plain' } })).statusCode, 415)
  }
})

t.test('a database failure is a generic 500', async (t) => {
  const callBroken = callOn(await buildBrokenApp(t, contract.doc))
  const id = randomUUID()
  for (const res of [
    await callBroken(t, LIST, { url: LIST }),
    await callBroken(t, ONE, { url: '/consumer-groups/g' }),
    await callBroken(t, ONE, { method: 'PUT', url: '/consumer-groups/g', payload: {} }),
    await callBroken(t, ONE, { method: 'DELETE', url: '/consumer-groups/g' }),
    await callBroken(t, POLL, { method: 'POST', url: '/consumer-groups/g/poll' }),
    await callBroken(t, ACK, { method: 'POST', url: '/consumer-groups/g/ack', payload: { eventIds: [id] } }),
    await callBroken(t, NACK, { method: 'POST', url: '/consumer-groups/g/nack', payload: { eventIds: [id] } }),
    await callBroken(t, PARKED, { url: '/consumer-groups/g/parked' }),
    await callBroken(t, REPLAY, { method: 'POST', url: '/consumer-groups/g/parked/replay', payload: {} }),
    await callBroken(t, PARKED_ONE, { method: 'DELETE', url: `/consumer-groups/g/parked/${id}` }),
  ]) {
    t.equal(res.statusCode, 500)
    t.notMatch(res.body, LEAKS, 'no database details leak')
  }
})

t.test('every documented status of /consumer-groups was produced', async (t) => {
  t.same(contract.unexercised((path) => path.startsWith(LIST)), [])
})
