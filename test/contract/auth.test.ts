import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { events, streamId } from '../helpers/fixtures.js'
import { OpenapiContract, operations } from '../helpers/openapi-contract.js'
import { fillPath, PUBLIC_PATH, roleOf } from '../helpers/operation-request.js'
import { buildTestApp } from '../helpers/test-app.js'

// The auth matrix (SPEC "Security"): every operation of openapi.yaml × no key, a bad key, each role, and a
// key naming another tenant; every answer checked against openapi.yaml.
const contract = await OpenapiContract.load()
const KEYS = {
  read: 'read-key-acme-7d1c0b3e',
  write: 'write-key-acme-51f0aa92',
  admin: 'admin-key-acme-c83e41d7',
  star: 'admin-key-star-0e6a9f15',
}
const API_KEYS = `${KEYS.read}:acme:read,${KEYS.write}:acme:write,${KEYS.admin}:acme:admin,${KEYS.star}:*:admin`
const { app } = await buildTestApp(t, { API_KEYS })
const RANK = { read: 1, write: 2, admin: 3 } as const

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

const takesBody = (method: string, path: string): boolean => Boolean(contract.doc.paths[path]?.[method.toLowerCase()]?.requestBody)

const callOn = (target: FastifyInstance) => async (t: Test, method: string, path: string, headers: Record<string, string>, url = fillPath(path)) => {
  // JSON routes ignore Accept; /subscribe answers 406 to it instead of opening a stream the test would wait on
  const options: InjectOptions = { method: method.toUpperCase() as 'GET', url, headers: { accept: 'application/json', ...headers } }
  if (takesBody(method, path)) options.payload = {}
  const res = await target.inject(options)
  contract.check(t, method, path, res)
  return res
}
const call = callOn(app)
const ops = operations(contract.doc)
const keyed = ops.filter(({ path }) => !PUBLIC_PATH.test(path))
let requests = 0

t.test('every keyed operation × no key, bad key, read, write, admin and another tenant', async (t) => {
  for (const { path, method } of keyed) {
    const label = `${method.toUpperCase()} ${path}`
    const needed = roleOf(method, path) as keyof typeof RANK
    const none = await call(t, method, path, {})
    t.equal(none.statusCode, 401, `${label} without a key`)
    t.equal(none.json().code, 'unauthorized')
    t.equal(none.headers['www-authenticate'], 'Bearer realm="annalist"')
    for (const wrong of ['Bearer not-a-key', `Basic ${Buffer.from('admin:admin').toString('base64')}`, `Bearer ${KEYS.admin}x`, 'Bearer', KEYS.admin]) {
      t.equal((await call(t, method, path, { authorization: wrong })).statusCode, 401, `${label} with ${wrong.slice(0, 12)}…`)
    }
    for (const role of ['read', 'write', 'admin'] as const) {
      const res = await call(t, method, path, bearer(KEYS[role]))
      if (RANK[role] >= RANK[needed]) t.not(res.statusCode, 403, `${label} is allowed to ${role}`, { body: res.body })
      else t.match(res, { statusCode: 403, body: /"code":"forbidden"/ }, `${label} is forbidden to ${role}`)
      t.not(res.statusCode, 401, `${label} knows the ${role} key`)
      // naming another tenant: only an admin may
      const other = await call(t, method, path, { ...bearer(KEYS[role]), 'x-tenant-id': 'beta' })
      if (role === 'admin') t.not(other.statusCode, 403, `${label}: an admin may act for another tenant`)
      else t.match(other, { statusCode: 403, body: /another/ }, `${label}: ${role} may not act for another tenant`)
      // naming its own tenant is no change
      if (RANK[role] >= RANK[needed]) t.not((await call(t, method, path, { ...bearer(KEYS[role]), 'x-tenant-id': 'acme' })).statusCode, 403)
      requests += 3
    }
    requests += 6
  }
  t.ok(keyed.length >= 26, `${keyed.length} keyed operations walked, ${requests} requests`)
})

t.test('public operations answer without a key, and ignore a bad one', async (t) => {
  for (const { path, method } of ops.filter(({ path }) => PUBLIC_PATH.test(path))) {
    for (const headers of [{}, { authorization: 'Bearer nope' }]) {
      const res = await call(t, method, path, headers)
      t.ok(res.statusCode < 400, `${method.toUpperCase()} ${path} → ${res.statusCode}`)
    }
  }
})

t.test('system streams are admin only, whichever route names them', async (t) => {
  const system = [
    ['POST', '/streams/{streamId}/events', '/streams/$projections/events'],
    ['GET', '/streams/{streamId}/events', '/streams/$projections/events'],
    ['GET', '/streams/{streamId}', '/streams/$projection-orders'],
    ['PUT', '/streams/{streamId}/snapshots/{version}', '/streams/$projections/snapshots/1'],
    ['GET', '/streams/{streamId}/snapshots', '/streams/$projections/snapshots'],
    ['GET', '/streams/{streamId}/load', '/streams/$projections/load'],
    ['GET', '/events', '/events?category=$projection'],
    ['GET', '/events', '/events?streamId=$projections'],
    ['GET', '/events', '/events?category=order&category=$projection'],
    ['GET', '/streams', '/streams?prefix=$'],
    ['GET', '/streams', '/streams?category=$projection'],
    ['GET', '/subscribe', '/subscribe?streamId=$projections'],
  ] as const
  for (const [method, path, url] of system) {
    for (const role of ['read', 'write'] as const) {
      t.equal((await call(t, method, path, bearer(KEYS[role]), url)).statusCode, 403, `${method} ${url} as ${role}`)
    }
    t.not((await call(t, method, path, bearer(KEYS.admin), url)).statusCode, 403, `${method} ${url} as admin`)
  }
  // POST /appends names its streams in the body
  const appends = (key: string) => app.inject({ method: 'POST', url: '/appends', headers: bearer(key), payload: { appends: [{ streamId: streamId(), events: events(1) }, { streamId: '$audit', events: events(1) }] } })
  for (const role of ['read', 'write'] as const) t.equal((await appends(KEYS[role])).statusCode, 403, `POST /appends naming $audit as ${role}`)
  t.equal((await appends(KEYS.admin)).statusCode, 201, 'POST /appends naming $audit as admin')
})

t.test('the key decides the tenant: admin may name any, * acts for default', async (t) => {
  const id = streamId()
  const append = (headers: Record<string, string>) =>
    app.inject({ method: 'POST', url: `/streams/${id}/events`, headers, payload: { events: events(1) } })
  t.equal((await append(bearer(KEYS.write))).statusCode, 201)
  t.equal((await append({ ...bearer(KEYS.admin), 'x-tenant-id': 'beta' })).statusCode, 201)
  t.equal((await append(bearer(KEYS.star))).statusCode, 201)
  const version = async (headers: Record<string, string>) => (await app.inject({ url: `/streams/${id}`, headers })).json().version
  t.equal(await version(bearer(KEYS.read)), 1, 'acme has its own stream')
  t.equal(await version({ ...bearer(KEYS.star), 'x-tenant-id': 'beta' }), 1, 'beta has another')
  t.equal(await version({ ...bearer(KEYS.admin), 'x-tenant-id': 'default' }), 1, 'and the * key wrote to default')
  t.equal((await app.inject({ url: `/streams/${id}`, headers: { ...bearer(KEYS.read), 'x-tenant-id': 'Bad Tenant' } })).statusCode, 400)
  t.equal((await app.inject({ url: '/nowhere' })).statusCode, 401, 'an unknown route needs a key first')
  t.equal((await app.inject({ url: '/nowhere', headers: bearer(KEYS.read) })).statusCode, 404)
  t.equal((await app.inject({ url: '/streams', headers: { authorization: `bearer   ${KEYS.read}  ` } })).statusCode, 200, 'the scheme is case-insensitive')
})

t.test('a key past RATE_LIMIT_MAX gets 429 on every keyed operation; other keys and public routes do not', async (t) => {
  const { app: limited } = await buildTestApp(t, { API_KEYS, RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '600000' })
  const callLimited = callOn(limited)
  t.not((await callLimited(t, 'GET', '/streams', bearer(KEYS.admin))).statusCode, 429)
  t.not((await callLimited(t, 'GET', '/streams', bearer(KEYS.admin))).statusCode, 429)
  for (const { path, method } of keyed) {
    const res = await callLimited(t, method, path, bearer(KEYS.admin))
    t.equal(res.statusCode, 429, `${method.toUpperCase()} ${path}`)
    t.match(res.json(), { code: 'too-many-requests', retryAfterSeconds: Number })
    t.ok(Number(res.headers['retry-after']) > 0, 'Retry-After')
  }
  t.equal((await callLimited(t, 'GET', '/streams', bearer(KEYS.read))).statusCode, 200, 'another key has its own budget')
  for (let i = 0; i < 5; i++) t.equal((await callLimited(t, 'GET', '/health/live', {})).statusCode, 200, 'health is never limited')
})

t.test('an operation that takes no body refuses one with 400 before reading it, and accepts an empty one', async (t) => {
  const noBody = ops.filter(({ method, operation }) => method !== 'get' && !operation.requestBody)
  t.ok(noBody.length >= 10, `${noBody.length} operations take no body`)
  for (const { path, method } of noBody) {
    const label = `${method.toUpperCase()} ${path}`
    const send = async (payload: string | undefined, type?: string) => {
      const headers: Record<string, string> = { ...bearer(KEYS.admin), ...(type ? { 'content-type': type } : {}) }
      const res = await app.inject({ method: method.toUpperCase() as 'POST', url: fillPath(path), headers, ...(payload === undefined ? {} : { payload }) })
      contract.check(t, method, path, res)
      return res
    }
    for (const [payload, type] of [['{}', 'application/json'], ['{"a":1}', 'text/plain'], [`"${'x'.repeat(1024 * 1024)}"`, 'application/json']] as const) {
      const res = await send(payload, type)
      t.equal(res.statusCode, 400, `${label} with a ${type} body of ${payload.length} bytes`)
      t.match(res.json(), { code: 'validation-failed', detail: /takes no request body/ })
    }
    for (const type of [undefined, 'application/json']) {
      const res = await send(type ? '' : undefined, type)
      t.not(res.statusCode, 400, `${label} with no body${type ? ` labelled ${type}` : ''}`, { body: res.body })
    }
  }
})

t.test('every keyed operation produced its documented 401, 403 and 429', async (t) => {
  t.same(contract.unexercised((path) => !PUBLIC_PATH.test(path), true), [])
})
