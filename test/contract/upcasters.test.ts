import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { buildBrokenApp, LEAKS } from '../helpers/broken-app.js'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildTestApp } from '../helpers/test-app.js'

// /upcasters, checked against openapi.yaml like every other route.
const contract = await OpenapiContract.load()
const { app, config } = await buildTestApp(t)

const ONE = '/upcasters/{type}'
const LIST = '/upcasters'
const STEPS = [
  { from: 1, to: 2, rename: { amount: 'total_amount' } },
  { from: 2, to: 3, defaults: { currency: 'USD' } },
]

const callOn = (target: FastifyInstance) => async (t: Test, path: string, options: InjectOptions & { url: string }) => {
  const res = await target.inject(options)
  contract.check(t, String(options.method ?? 'GET'), path, res)
  return res
}
const call = callOn(app)
const put = (t: Test, type: string, payload: unknown, headers: Record<string, string> = {}) =>
  call(t, ONE, { method: 'PUT', url: `/upcasters/${type}`, payload: payload as object, headers })

t.test('upcasters are defined, replaced, read, listed and removed', async (t) => {
  t.equal((await put(t, 'OrderPlaced', { steps: STEPS })).statusCode, 201)
  t.equal((await put(t, 'OrderPlaced', { steps: [{ ...STEPS[0], remove: ['legacyCode'] }] })).statusCode, 200)
  t.match((await call(t, ONE, { url: '/upcasters/OrderPlaced' })).json(), { type: 'OrderPlaced', steps: [{ remove: ['legacyCode'] }] })
  t.match((await call(t, LIST, { url: '/upcasters' })).json(), { upcasters: [{ type: 'OrderPlaced' }] })
  t.equal((await call(t, ONE, { method: 'DELETE', url: '/upcasters/OrderPlaced' })).statusCode, 204)
  t.match((await call(t, ONE, { url: '/upcasters/OrderPlaced' })).json(), { code: 'not-found', eventType: 'OrderPlaced' })
  t.match((await call(t, ONE, { method: 'DELETE', url: '/upcasters/OrderPlaced' })).json(), { code: 'not-found', eventType: 'OrderPlaced' })
})

t.test('invalid definitions and types are 400; size and media type are checked', async (t) => {
  t.match((await put(t, 'OrderPlaced', { steps: [{ from: 1, to: 3 }] })).json(), { code: 'validation-failed', detail: 'steps[0].to must be 2 (from + 1)' })
  t.equal((await put(t, 'bad%20type', { steps: STEPS })).statusCode, 400)
  t.equal((await call(t, ONE, { url: '/upcasters/bad%20type' })).statusCode, 400)
  t.equal((await call(t, ONE, { method: 'DELETE', url: '/upcasters/bad%20type' })).statusCode, 400)
  t.equal((await call(t, LIST, { url: '/upcasters', headers: { 'x-tenant-id': 'Not A Tenant' } })).statusCode, 400)
  const large = JSON.stringify({ steps: [{ from: 1, to: 2, defaults: { pad: 'x'.repeat(config.MAX_BODY_BYTES) } }] })
  t.equal((await put(t, 'OrderPlaced', large, { 'content-type': 'application/json' })).statusCode, 413)
  t.equal((await put(t, 'OrderPlaced', 'steps', { 'content-type': 'text/plain' })).statusCode, 415)
})

t.test('a database failure is a generic 500', async (t) => {
  const callBroken = callOn(await buildBrokenApp(t, contract.doc))
  for (const res of [
    await callBroken(t, LIST, { url: '/upcasters' }),
    await callBroken(t, ONE, { method: 'PUT', url: '/upcasters/OrderPlaced', payload: { steps: STEPS } }),
    await callBroken(t, ONE, { url: '/upcasters/OrderPlaced' }),
    await callBroken(t, ONE, { method: 'DELETE', url: '/upcasters/OrderPlaced' }),
  ]) {
    t.equal(res.statusCode, 500)
    t.notMatch(res.body, LEAKS, 'no database details leak')
  }
})

t.test('every documented status of /upcasters was produced', async (t) => {
  t.same(contract.unexercised((path) => path.startsWith(LIST)), [])
})
