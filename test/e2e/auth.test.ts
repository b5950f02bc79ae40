import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { testDatabase } from '../helpers/test-database.js'
import { startServer } from '../helpers/server-process.js'
import { SseClient } from '../helpers/sse-client.js'
import { waitFor } from '../helpers/wait-for.js'

// API keys through the real server: what it says at start-up, that no key reaches its log at any level, and
// the per-key limit on open subscriptions.
const READ = 'e2e-read-key-9c41d07b'
const ADMIN = 'e2e-admin-key-13f8e6a2'
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

t.test('with keys: says so at start-up, and no key is ever logged, not even at trace', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url, API_KEYS: `${READ}:acme:read,${ADMIN}:*:admin`, LOG_LEVEL: 'trace' })
  const requests: [string, string, Record<string, string>][] = [
    ['GET', '/streams', { authorization: `Bearer ${READ}` }],
    ['POST', '/streams/order-1/events', { authorization: `Bearer ${READ}` }],
    ['GET', '/streams', { authorization: `Bearer ${ADMIN}`, 'x-tenant-id': 'beta' }],
    ['GET', '/streams', { authorization: `Bearer ${READ}x` }],
    ['GET', '/streams', { authorization: `Bearer ${ADMIN.slice(0, 10)}` }],
    ['GET', '/metrics', { authorization: `Bearer ${ADMIN}` }],
  ]
  const statuses = []
  for (const [method, path, headers] of requests) statuses.push((await server.request(method, path, { headers, body: method === 'POST' ? { events: [{ type: 'A', data: 1 }] } : undefined })).status)
  t.same(statuses, [200, 403, 200, 401, 401, 200])
  t.ok(server.logs().some((line) => line.msg === 'API keys configured: every route but /health/*, /openapi.json, /docs and / needs one' && line.keys === 2))
  t.notOk(server.logs().some((line) => String(line.msg).includes('the server is open')), 'it does not say it is open')
  server.kill('SIGTERM')
  await server.waitForExit()
  const output = server.stdout.join('\n') + server.stderr
  t.ok(output.length > 1000, `${output.length} characters of log read`)
  for (const secret of [READ, ADMIN, `${READ}x`, ADMIN.slice(0, 10)]) t.notMatch(output, secret, `${secret.slice(0, 8)}… is not in the log`)
  t.ok(server.logs().some((line) => line.msg === 'request' && line.key === 'key-1'), 'a request line names the key by its id')
})

t.test('without keys: the start-up log says the server is open', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url })
  t.ok(server.logs().some((line) => line.level === 40 && line.msg === 'no API keys configured: the server is open and every caller acts as admin'))
})

t.test('a malformed API_KEYS stops start-up with one line that does not echo it', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', API_KEYS: `${ADMIN}:acme:superuser`, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const code = await new Promise((resolve) => child.once('exit', resolve))
  t.equal(code, 1)
  t.equal(stderr.trim().split('\n').length, 1, stderr)
  t.match(stderr, /^config: API_KEYS must be comma-separated key:tenant:role entries/)
  t.notMatch(stderr, ADMIN)
})

t.test('MAX_SUBSCRIPTIONS_PER_KEY open streams per key; one more is 429 until one closes', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url, API_KEYS: `${READ}:acme:read,${ADMIN}:*:admin`, MAX_SUBSCRIPTIONS_PER_KEY: '2' })
  const open = (key: string) => SseClient.open(server.url, '/subscribe', { authorization: `Bearer ${key}` })
  const first = await open(READ)
  const second = await open(READ)
  t.teardown(() => second.close())
  t.same([first.status, second.status], [200, 200])
  const refused = await server.request('GET', '/subscribe', { headers: { authorization: `Bearer ${READ}`, accept: 'text/event-stream' } })
  t.equal(refused.status, 429)
  t.match(refused.headers['content-type'], /^application\/problem\+json/)
  t.equal(refused.body.code, 'too-many-requests')
  const other = await open(ADMIN)
  t.equal(other.status, 200, 'another key has its own allowance')
  const metrics = await server.request('GET', '/metrics', { headers: { authorization: `Bearer ${ADMIN}` } })
  t.match(metrics.text, /^annalist_subscriptions_open 3$/m, 'the metrics count the open streams')
  other.close()
  first.close()
  const again = await waitFor('a stream to be free again', async () => {
    const client = await open(READ)
    if (client.status === 200) return client
    client.close()
    return undefined
  })
  t.equal(again.status, 200, 'a closed stream frees its place')
  again.close()
})
