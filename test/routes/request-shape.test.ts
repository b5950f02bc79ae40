import t from 'tap'
import { operations, readOpenapi } from '../helpers/openapi-contract.js'
import { fillPath } from '../helpers/operation-request.js'
import { buildTestApp } from '../helpers/test-app.js'

// SPEC "Details": a trailing slash is a path outside the contract, and HEAD is answered wherever GET is,
// with GET's status, headers and access rule.
const doc = await readOpenapi()
const ADMIN = 'admin-key-shape-5b1f0c2e'
const READ = 'read-key-shape-9e3d7a41'
const { app: keyed } = await buildTestApp(t, { API_KEYS: `${ADMIN}:*:admin,${READ}:default:read` })
const { app: open } = await buildTestApp(t)
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const SSE = new Set(['/subscribe', '/projections/{name}/backfills/{id}/progress'])
// differ between any two responses; content-length too, where the body differs (/metrics counts this request,
// and a problem's detail names the method), and is checked apart
const VOLATILE = new Set(['date', 'connection', 'keep-alive', 'content-length'])

const headersOf = (res: { headers: Record<string, unknown> }): Record<string, unknown> =>
  Object.fromEntries(Object.entries(res.headers).filter(([name]) => !VOLATILE.has(name)))

t.test('every path with a trailing slash added is 404 not-found, with or without a key', async (t) => {
  const urls = ['/projections/', '/upcasters/', '/streams/', '/events/', '/subscribe/', '/docs/', '/health/live/', '/openapi.json/', '/metrics/']
  for (const url of urls) {
    for (const [app, headers, label] of [[open, {}, 'open server'], [keyed, bearer(ADMIN), 'admin key']] as const) {
      const res = await app.inject({ url, headers })
      t.equal(res.statusCode, 404, `GET ${url} (${label})`)
      t.equal(res.json().code, 'not-found', `GET ${url} (${label}) is not-found`)
      t.equal((await app.inject({ method: 'HEAD', url, headers })).statusCode, 404, `HEAD ${url} (${label})`)
    }
  }
  t.equal((await keyed.inject({ url: '/projections/' })).statusCode, 401, 'without a key it is 401 first, as for any unknown path')
  t.equal((await keyed.inject({ url: '/docs/' })).statusCode, 404, 'a public path with a slash added is not public')
  t.equal((await open.inject({ url: '/projections' })).statusCode, 200, 'the path itself still answers')
  t.equal((await open.inject({ url: '/?x=1' })).statusCode, 200, '/ is the one path that ends in a slash')
})

t.test('HEAD answers every GET operation with its status and headers and no body, under every access', async (t) => {
  const gets = operations(doc).filter(({ method, path }) => method === 'get' && !SSE.has(path))
  t.ok(gets.length >= 25, `${gets.length} GET operations`)
  const accesses = [[open, {}, 'open'], [keyed, {}, 'no key'], [keyed, bearer(READ), 'read key'], [keyed, bearer(ADMIN), 'admin key']] as const
  for (const { path } of gets) {
    const url = fillPath(path)
    for (const [app, auth, label] of accesses) {
      const headers = { ...auth, 'x-request-id': 'same-id' }
      const get = await app.inject({ url, headers })
      const head = await app.inject({ method: 'HEAD', url, headers })
      t.equal(head.statusCode, get.statusCode, `HEAD ${path} (${label}) → ${get.statusCode}`)
      t.same(headersOf(head), headersOf(get), `HEAD ${path} (${label}) has GET's headers`)
      t.equal(head.body, '', `HEAD ${path} (${label}) has no body`)
      t.equal(head.headers['content-length'] === undefined, get.headers['content-length'] === undefined, `HEAD ${path} (${label}) has content-length as GET has`)
      if (path !== '/metrics' && get.statusCode < 400) t.equal(head.headers['content-length'], get.headers['content-length'])
    }
  }
  t.equal((await keyed.inject({ method: 'HEAD', url: '/health/live' })).statusCode, 200, 'public stays public')
  t.equal((await keyed.inject({ method: 'HEAD', url: '/openapi.json' })).statusCode, 200, 'public stays public')
  t.equal((await keyed.inject({ method: 'HEAD', url: '/health/live', headers: bearer(ADMIN) })).statusCode, 200, 'with a key too')
  t.equal((await keyed.inject({ method: 'HEAD', url: '/metrics', headers: bearer(READ) })).statusCode, 403, 'GET /metrics needs admin, so does HEAD')
})

t.test('HEAD on a server-sent event stream ends after the headers; the stream\'s refusals apply as for GET', async (t) => {
  const head = await open.inject({ method: 'HEAD', url: '/subscribe' })
  t.equal(head.statusCode, 200)
  t.match(head.headers['content-type'], /^text\/event-stream/)
  t.equal(head.body, '')
  t.equal((await open.inject({ method: 'HEAD', url: '/subscribe', headers: { accept: 'application/json' } })).statusCode, 406)
  t.equal((await keyed.inject({ method: 'HEAD', url: '/subscribe' })).statusCode, 401)
  t.equal((await keyed.inject({ method: 'HEAD', url: '/subscribe?streamId=$projections', headers: bearer(READ) })).statusCode, 403)
  const progress = await open.inject({ method: 'HEAD', url: fillPath('/projections/{name}/backfills/{id}/progress') })
  t.equal(progress.statusCode, 404, 'an unknown backfill is 404, as for GET')
})
