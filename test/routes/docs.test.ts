import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parse } from 'yaml'
import { buildTestApp } from '../helpers/test-app.js'

t.test('/openapi.json serves the committed openapi.yaml and /docs renders it', async (t) => {
  const { app } = await buildTestApp(t)
  const served = await app.inject({ url: '/openapi.json' })
  t.equal(served.statusCode, 200)
  t.match(served.headers['content-type'], /application\/json/)
  t.same(served.json(), parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8')))
  const docs = await app.inject({ url: '/docs' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /text\/html/)
  t.match(docs.payload, /<title>Annalist API<\/title>/)
  t.notMatch(docs.payload, /Swagger UI<\/title>/)
  t.match(docs.headers['content-security-policy'], /script-src 'self';/)
  const initializer = await app.inject({ url: '/docs/static/swagger-initializer.js' })
  t.match(initializer.payload, /data:image\/svg\+xml;base64,/, 'the top bar shows Annalist\'s logo')
  t.equal((await app.inject({ url: '/docs/static/theme/annalist.svg' })).headers['content-type'], 'image/svg+xml')
})

t.test('a request id is echoed when valid and replaced when not', async (t) => {
  const { app } = await buildTestApp(t)
  const echoed = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'abc-123' } })
  t.equal(echoed.headers['x-request-id'], 'abc-123')
  const replaced = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'has spaces <script>' } })
  t.not(replaced.headers['x-request-id'], 'has spaces <script>')
  t.match(replaced.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  const missing = await app.inject({ url: '/nowhere' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'not-found')
  t.ok(missing.headers['x-request-id'], 'on a 404 too')
  const wrongMethod = await app.inject({ method: 'DELETE', url: '/events' })
  t.equal(wrongMethod.statusCode, 404, 'a method outside the contract is 404')
})
