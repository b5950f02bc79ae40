import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { events, streamId } from '../helpers/fixtures.js'
import { buildBrokenApp, LEAKS } from '../helpers/broken-app.js'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildTestApp } from '../helpers/test-app.js'

// Snapshots and load, checked against openapi.yaml like every other route.
const contract = await OpenapiContract.load()
const { app, config } = await buildTestApp(t)

const PUT = '/streams/{streamId}/snapshots/{version}'
const LIST = '/streams/{streamId}/snapshots'
const LATEST = '/streams/{streamId}/snapshots/latest'
const LOAD = '/streams/{streamId}/load'
const PATHS = /^\/streams\/\{streamId\}\/(snapshots|load)/

const callOn = (target: FastifyInstance) => async (t: Test, path: string, options: InjectOptions & { url: string }) => {
  const res = await target.inject(options)
  contract.check(t, String(options.method ?? 'GET'), path, res)
  return res
}
const call = callOn(app)
const put = (t: Test, id: string, version: number | string, payload: unknown, headers: Record<string, string> = {}) =>
  call(t, PUT, { method: 'PUT', url: `/streams/${id}/snapshots/${version}`, payload: payload as object, headers })

const id = streamId()
await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: { events: events(5) } })

t.test('snapshots are stored, replaced, listed and found', async (t) => {
  t.equal((await put(t, id, 2, { state: { n: 2 }, schemaVersion: 2 })).statusCode, 201)
  t.equal((await put(t, id, 2, { state: { n: 2.5 } })).statusCode, 200)
  t.equal((await put(t, id, 4, { state: { n: 4 } })).statusCode, 201)
  t.match((await call(t, LIST, { url: `/streams/${id}/snapshots` })).json(), { snapshots: [{ version: 4 }, { version: 2 }] })
  t.match((await call(t, LATEST, { url: `/streams/${id}/snapshots/latest?atOrBefore=3` })).json(), { version: 2, state: { n: 2.5 } })
  t.match((await call(t, '/streams/{streamId}', { url: `/streams/${id}` })).json(), { snapshot: { version: 4, schemaVersion: 1 } })
})

t.test('conflicts, missing snapshots and streams, and bad input answer as documented', async (t) => {
  t.match((await put(t, id, 6, { state: {} })).json(), { code: 'conflict', currentVersion: 5 })
  t.match((await put(t, streamId(), 1, { state: {} })).json(), { code: 'conflict', currentVersion: 0 })
  t.match((await call(t, LATEST, { url: `/streams/${id}/snapshots/latest?atOrBefore=1` })).json(), { code: 'snapshot-not-found', streamId: id })
  t.match((await call(t, LIST, { url: `/streams/${streamId()}/snapshots` })).json(), { code: 'stream-not-found' })
  t.match((await call(t, LOAD, { url: `/streams/${streamId()}/load` })).json(), { code: 'stream-not-found' })
  t.equal((await put(t, id, 0, { state: {} })).statusCode, 400)
  t.equal((await put(t, id, 1, { state: {}, extra: true })).statusCode, 400)
  t.equal((await call(t, LIST, { url: '/streams/a%20b/snapshots' })).statusCode, 400)
  t.equal((await call(t, LATEST, { url: `/streams/${id}/snapshots/latest?atOrBefore=0` })).statusCode, 400)
  t.equal((await call(t, LOAD, { url: `/streams/${id}/load?until=yesterday` })).statusCode, 400)
  const large = JSON.stringify({ state: 'x'.repeat(config.MAX_BODY_BYTES) })
  t.equal((await put(t, id, 1, large, { 'content-type': 'application/json' })).statusCode, 413)
  t.equal((await put(t, id, 1, 'state', { 'content-type': 'text/plain' })).statusCode, 415)
})

t.test('load answers the snapshot and the events after it', async (t) => {
  const loaded = (await call(t, LOAD, { url: `/streams/${id}/load?untilVersion=5` })).json()
  t.match(loaded, { streamId: id, version: 5, snapshot: { version: 4 }, snapshotDue: false })
  t.same(loaded.events.map((e: { streamVersion: number }) => e.streamVersion), [5])
})

t.test('a database failure is a generic 500', async (t) => {
  const callBroken = callOn(await buildBrokenApp(t, contract.doc))
  for (const res of [
    await callBroken(t, PUT, { method: 'PUT', url: '/streams/order-1/snapshots/1', payload: { state: {} } }),
    await callBroken(t, LIST, { url: '/streams/order-1/snapshots' }),
    await callBroken(t, LATEST, { url: '/streams/order-1/snapshots/latest' }),
    await callBroken(t, LOAD, { url: '/streams/order-1/load' }),
  ]) {
    t.equal(res.statusCode, 500)
    t.notMatch(res.body, LEAKS, 'no database details leak')
  }
})

t.test('every documented status of snapshots and load was produced', async (t) => {
  t.same(contract.unexercised((path) => PATHS.test(path)), [])
})
