import t, { type Test } from 'tap'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildTestApp } from '../helpers/test-app.js'
import { waitFor } from '../helpers/wait-for.js'

// Projection definitions and management, checked against openapi.yaml like every other route.
const contract = await OpenapiContract.load()
const code = t.testdir({ 'tally.mjs': "export default { name: 'tally', source: { types: ['Tick'] }, handlers: { Tick: async () => {} } }" })
const { app, db } = await buildTestApp(t, { PROJECTIONS_DIR: code })

const MANAGEMENT = /^\/projections(\/\{name\}(\/(start|stop|restart|skip|reset))?)?$/

const call = async (t: Test, path: string, method: string, url: string, payload?: object, headers?: Record<string, string>) => {
  const res = await app.inject({ method: method as 'GET', url, payload, headers })
  contract.check(t, method, path, res)
  return res
}

const definition = {
  source: { categories: ['order'] },
  documentId: '$.streamId',
  handlers: { Labelled: { set: { skus: '$.data.label' } }, ItemAdded: { push: { skus: '$.data.sku' } } },
}

t.test('define, list, describe, redefine and delete', async (t) => {
  t.equal((await call(t, '/projections/{name}', 'PUT', '/projections/orders', definition)).statusCode, 201)
  t.equal((await call(t, '/projections/{name}', 'PUT', '/projections/orders', definition)).statusCode, 200)
  t.equal((await call(t, '/projections/{name}', 'PUT', '/projections/orders', { ...definition, documentId: 'x' })).statusCode, 400)
  const big = await app.inject({ method: 'PUT', url: '/projections/big', payload: { ...definition, pad: 'x'.repeat(1_100_000) } })
  contract.check(t, 'PUT', '/projections/{name}', big)
  t.equal(big.statusCode, 413)
  const text = await app.inject({ method: 'PUT', url: '/projections/orders', payload: 'x', headers: { 'content-type': 'text/plain' } })
  contract.check(t, 'PUT', '/projections/{name}', text)
  t.equal(text.statusCode, 415)
  t.equal((await call(t, '/projections', 'GET', '/projections')).json().projections.length, 2)
  t.equal((await call(t, '/projections/{name}', 'GET', '/projections/orders')).statusCode, 200)
  t.equal((await call(t, '/projections/{name}', 'GET', '/projections/nope')).statusCode, 404)
  t.equal((await call(t, '/projections/{name}', 'GET', '/projections/Bad!')).statusCode, 400)
  t.equal((await call(t, '/projections/{name}', 'PUT', '/projections/tally', definition)).statusCode, 409, 'a code projection')
  t.equal((await call(t, '/projections/{name}', 'DELETE', '/projections/nope')).statusCode, 404)
})

t.test('management calls answer with the status after they took effect', async (t) => {
  await app.inject({ method: 'POST', url: '/streams/order-1/events', payload: { events: [{ type: 'Labelled', data: { label: 'x' } }] } })
  await app.inject({ method: 'POST', url: '/streams/order-1/events', payload: { events: [{ type: 'ItemAdded', data: { sku: 'a' } }] } })
  t.equal((await call(t, '/projections/{name}/skip', 'POST', '/projections/orders/skip')).statusCode === 200 ? 'raced' : 'ok', 'ok')
  await waitFor('orders failed', async () => (await app.inject({ url: '/projections/orders' })).json().status === 'failed', { timeoutMs: 30_000 })
  t.equal((await call(t, '/projections/{name}/restart', 'POST', '/projections/orders/restart')).statusCode, 200)
  await waitFor('orders failed again', async () => (await app.inject({ url: '/projections/orders' })).json().status === 'failed', { timeoutMs: 30_000 })
  const skipped = await call(t, '/projections/{name}/skip', 'POST', '/projections/orders/skip')
  t.equal(skipped.statusCode, 200)
  t.equal((await call(t, '/projections/{name}/stop', 'POST', '/projections/orders/stop')).json().status, 'stopped')
  t.not((await call(t, '/projections/{name}/start', 'POST', '/projections/orders/start')).json().status, 'stopped')
  t.equal((await call(t, '/projections/{name}/reset', 'POST', '/projections/orders/reset')).statusCode, 200)
  for (const action of ['start', 'stop', 'restart', 'skip', 'reset']) {
    t.equal((await call(t, `/projections/{name}/${action}`, 'POST', `/projections/nope/${action}`)).statusCode, 404)
    t.equal((await call(t, `/projections/{name}/${action}`, 'POST', `/projections/Bad!/${action}`)).statusCode, 400)
  }
  t.equal((await call(t, '/projections/{name}', 'DELETE', '/projections/orders')).statusCode, 204)
})

t.test('bad tenant headers are 400 here too', async (t) => {
  t.equal((await call(t, '/projections', 'GET', '/projections', undefined, { 'x-tenant-id': 'Bad Tenant' })).statusCode, 400)
  t.equal((await call(t, '/projections/{name}', 'DELETE', '/projections/Bad!')).statusCode, 400)
})

// A serialization failure on every try, from a trigger on the projection's row: what the server's retries
// cannot settle (src/projections/projection-lock.ts) answers 409 conflict with retryable: true, never a 500.
// With two failures only, the retries settle it and the call answers as usual.
t.test('serialization failures are retried; a call they keep failing is 409 conflict, retryable', async (t) => {
  await db.sql`create sequence contention`
  await db.sql`
    create function contend() returns trigger language plpgsql as $$
    begin
      if old.name = 'contended' or (old.name = 'flaky' and nextval('contention') <= 2) then
        raise exception 'simulated contention' using errcode = 'serialization_failure';
      end if;
      return coalesce(new, old);
    end $$`
  await db.sql`create trigger contend before update or delete on projections for each row execute function contend()`
  t.teardown(() => db.sql`drop trigger contend on projections`)
  // a source no event matches: its worker never changes the row, so the sequence counts the calls' tries alone
  const quiet = { ...definition, source: { categories: ['quiet'] } }
  for (const name of ['contended', 'flaky']) t.equal((await app.inject({ method: 'PUT', url: `/projections/${name}`, payload: quiet })).statusCode, 201)
  for (const action of ['start', 'stop', 'restart', 'reset']) {
    const res = await call(t, `/projections/{name}/${action}`, 'POST', `/projections/contended/${action}`)
    t.equal(res.statusCode, 409, `${action}: ${res.body}`)
    t.match(res.json(), { code: 'conflict', retryable: true })
  }
  const deleted = await call(t, '/projections/{name}', 'DELETE', '/projections/contended')
  t.equal(deleted.statusCode, 409, deleted.body)
  t.equal((await call(t, '/projections/{name}/stop', 'POST', '/projections/flaky/stop')).json().status, 'stopped', 'two failures, then the third try commits')
  t.equal((await db.sql<{ n: number }[]>`select last_value::int as n from contention`)[0]!.n, 3)
})

t.test('every documented status of these routes was produced, except a 500', async (t) => {
  t.same(contract.unexercised((path) => MANAGEMENT.test(path)).filter((label) => !label.endsWith(' 500')), [])
})
