import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { caughtUp } from '../helpers/projection-api.js'
import { ticks, TICKS } from '../helpers/snapshot-counter.js'
import { buildTestApp } from '../helpers/test-app.js'

// Projection snapshots, checked against openapi.yaml like every other route.
const contract = await OpenapiContract.load()
const { app, db } = await buildTestApp(t)

const SNAPSHOTS = /^\/projections\/\{name\}\/snapshots(\/\{id\}\/restore)?$/
const LIST = '/projections/{name}/snapshots'
const RESTORE = '/projections/{name}/snapshots/{id}/restore'

const call = async (t: Test, path: string, method: string, url: string) => {
  const res = await app.inject({ method: method as 'GET', url })
  contract.check(t, method, path, res)
  return res
}

t.test('take, list and restore', async (t) => {
  t.equal((await app.inject({ method: 'PUT', url: '/projections/counter', payload: TICKS })).statusCode, 201)
  await ticks(app, 'a', 3)
  await caughtUp(app, 'counter')
  const taken = await call(t, LIST, 'POST', '/projections/counter/snapshots')
  t.equal(taken.statusCode, 201)
  t.equal((await call(t, LIST, 'GET', '/projections/counter/snapshots')).json().snapshots.length, 1)
  t.equal((await call(t, RESTORE, 'POST', `/projections/counter/snapshots/${taken.json().id}/restore`)).statusCode, 200)
})

t.test('unknown projections and snapshots are 404, bad names and ids 400', async (t) => {
  t.equal((await call(t, LIST, 'POST', '/projections/nope/snapshots')).statusCode, 404)
  t.equal((await call(t, LIST, 'GET', '/projections/nope/snapshots')).statusCode, 404)
  t.equal((await call(t, RESTORE, 'POST', `/projections/nope/snapshots/${randomUUID()}/restore`)).statusCode, 404)
  t.equal((await call(t, RESTORE, 'POST', `/projections/counter/snapshots/${randomUUID()}/restore`)).json().code, 'snapshot-not-found')
  t.equal((await call(t, LIST, 'POST', '/projections/Bad!/snapshots')).statusCode, 400)
  t.equal((await call(t, LIST, 'GET', '/projections/Bad!/snapshots')).statusCode, 400)
  t.equal((await call(t, RESTORE, 'POST', '/projections/counter/snapshots/42/restore')).statusCode, 400)
})

t.test('a restore during a backfill, or under another definition, is 409', async (t) => {
  const { id } = (await app.inject({ method: 'POST', url: '/projections/counter/snapshots' })).json()
  const backfill = randomUUID()
  await db.sql`
    insert into projection_backfills (id, projection, status, request, atomic, generation, after_position)
    values (${backfill}, 'counter', 'queued', '{}', true, 2, 0)`
  t.equal((await call(t, RESTORE, 'POST', `/projections/counter/snapshots/${id}/restore`)).json().code, 'backfill-in-progress')
  await db.sql`update projection_backfills set status = 'cancelled' where id = ${backfill}`
  const redefined = { ...TICKS, handlers: { ...TICKS.handlers, Tick: { inc: { count: 2 } } } }
  t.equal((await app.inject({ method: 'PUT', url: '/projections/counter', payload: redefined })).statusCode, 200)
  // the swap must not race the app's teardown
  await caughtUp(app, 'counter')
  t.equal((await call(t, RESTORE, 'POST', `/projections/counter/snapshots/${id}/restore`)).json().code, 'conflict')
})

// what the server's retries cannot settle (src/projections/projection-lock.ts) is 409 conflict, retryable
t.test('a snapshot that keeps failing to serialize is 409 conflict, retryable', async (t) => {
  await db.sql`
    create function contend() returns trigger language plpgsql as $$
    begin
      raise exception 'simulated contention' using errcode = 'serialization_failure';
    end $$`
  t.equal((await app.inject({ method: 'PUT', url: '/projections/contended', payload: TICKS })).statusCode, 201)
  await db.sql`create trigger contend before insert on projection_snapshots for each row when (new.projection = 'contended') execute function contend()`
  t.teardown(() => db.sql`drop trigger contend on projection_snapshots`)
  const res = await call(t, LIST, 'POST', '/projections/contended/snapshots')
  t.equal(res.statusCode, 409, res.body)
  t.match(res.json(), { code: 'conflict', retryable: true })
})

t.test('every documented status of these routes was produced, except a 500', async (t) => {
  t.same(contract.unexercised((path) => SNAPSHOTS.test(path)).filter((label) => !label.endsWith(' 500')), [])
})
