import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import { EMBEDDED, testDatabase } from '../helpers/test-database.js'
import { startServer } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'

// SPEC "Personal data": the clear text never reaches a table, a log line or a metric; data keys are wrapped with
// ENCRYPTION_KEY (and the start-up log says when there is none); who may forget. Through the real server.
const run = promisify(execFile)
const WRITE = 'e2e-write-key-4a7c19d2'
const READ = 'e2e-read-key-0be3f5a1'
const ADMIN = 'e2e-admin-key-77d2c0e9'
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

t.test('a marker in personal data is nowhere in pg_dump, the log at trace or /metrics', { skip: EMBEDDED && 'pg_dump needs PostgreSQL' }, async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, {
    DATABASE_URL: db.url!,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    API_KEYS: `${WRITE}:acme:write,${READ}:acme:read,${ADMIN}:*:admin`,
    LOG_LEVEL: 'trace',
  })
  const marker = `marker${randomUUID().replaceAll('-', '')}`
  const subject = `customer-${randomUUID().slice(0, 8)}`
  const projection = { source: { categories: ['customer'] }, documentId: '$.streamId', handlers: { CustomerRegistered: { set: { plan: '$.data.plan' } } } }
  t.equal((await server.request('PUT', '/projections/plans', { body: projection, headers: bearer(ADMIN) })).status, 201)
  const appended = await server.request('POST', '/streams/customer-1/events', {
    headers: bearer(WRITE),
    body: { events: [{ type: 'CustomerRegistered', data: { plan: 'gold' }, subject, personalData: { name: marker, email: `${marker}@example.com` } }] },
  })
  t.equal(appended.status, 201)
  const read = await server.request('GET', '/streams/customer-1/events', { headers: bearer(READ) })
  t.equal(read.body.events[0].personalData.name, marker, 'it reads back in clear')
  t.equal((await server.request('GET', '/events', { headers: bearer(READ) })).body.events[0].personalData.name, marker)
  await waitFor('the projection caught up', async () => (await server.request('GET', '/projections/plans', { headers: bearer(READ) })).body.lag === 0)
  const metrics = await server.request('GET', '/metrics', { headers: bearer(ADMIN) })
  t.equal(metrics.status, 200)
  t.notMatch(metrics.text, marker, 'not in /metrics')

  const { stdout: dump } = await run('pg_dump', ['--data-only', '--dbname', db.url!], { maxBuffer: 256 * 1024 * 1024 })
  t.ok(dump.includes(subject), 'the dump holds the event (its subject is plain)')
  t.notMatch(dump, marker, 'not in any table')
  const [key] = await db.sql<{ keyWrap: string; bytes: number }[]>`select key_wrap as "keyWrap", octet_length(data_key) as bytes from subject_keys`
  t.not(key!.keyWrap, 'none', 'the data key is wrapped')
  t.equal(key!.bytes, 1 + 12 + 16 + 32, 'as an AES-256-GCM sealed 32-byte key')

  server.kill('SIGTERM')
  await server.waitForExit()
  const output = server.stdout.join('\n') + server.stderr
  t.ok(output.length > 1000, `${output.length} characters of log read`)
  t.notMatch(output, marker, 'not in the log')
  t.notOk(server.logs().some((line) => String(line.msg).includes('ENCRYPTION_KEY')), 'no warning about the master key')
})

t.test('roles: write appends personal data, read sees a subject, only admin forgets', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url!, API_KEYS: `${WRITE}:acme:write,${READ}:acme:read,${ADMIN}:*:admin` })
  const subject = `customer-${randomUUID().slice(0, 8)}`
  const body = { events: [{ type: 'CustomerRegistered', data: {}, subject, personalData: { name: 'Ada' } }] }
  t.equal((await server.request('POST', '/streams/customer-2/events', { headers: bearer(READ), body })).status, 403, 'read cannot append')
  t.equal((await server.request('POST', '/streams/customer-2/events', { headers: bearer(WRITE), body })).status, 201)
  t.equal((await server.request('GET', `/subjects/${subject}`)).status, 401)
  t.equal((await server.request('GET', `/subjects/${subject}`, { headers: bearer(READ) })).status, 200)
  for (const key of [READ, WRITE]) t.equal((await server.request('DELETE', `/subjects/${subject}`, { headers: bearer(key) })).status, 403)
  t.equal((await server.request('DELETE', `/subjects/${subject}`)).status, 401)
  t.match((await server.request('GET', `/subjects/${subject}`, { headers: bearer(READ) })).body, { forgotten: false })
  const [key] = await db.sql<{ keyWrap: string }[]>`select key_wrap as "keyWrap" from subject_keys where subject = ${subject}`
  t.equal(key!.keyWrap, 'none', 'without a master key the data key is stored unwrapped')
  const forgotten = await server.request('DELETE', `/subjects/${subject}`, { headers: { ...bearer(ADMIN), 'x-tenant-id': 'acme' } })
  t.equal(forgotten.status, 202)
  t.match(forgotten.body, { subject, events: 1 })
  t.equal((await server.request('GET', '/streams/customer-2/events', { headers: bearer(READ) })).body.events[0].forgotten, true)
  t.ok(server.logs().some((line) => String(line.msg).includes('no ENCRYPTION_KEY configured')), 'without a master key the start-up log says so')
})
