import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { testDatabase } from '../helpers/test-database.js'
import { spawnServer, startServer, type HttpResult, type ServerProcess } from '../helpers/server-process.js'

const MAX_BODY_BYTES = 2048
const MAX_EVENTS_PER_APPEND = 5

// An append body of exactly `bytes` bytes: one event whose data string is padded to fit.
const bodyOfSize = (bytes: number): string => {
  const empty = JSON.stringify({ events: [{ eventId: randomUUID(), type: 'Padded', data: '' }] })
  const body = empty.replace('"data":""', `"data":"${'x'.repeat(bytes - empty.length)}"`)
  if (Buffer.byteLength(body) !== bytes) throw new Error(`built ${Buffer.byteLength(body)} bytes, wanted ${bytes}`)
  return body
}

const isProblem = (t: Test, response: HttpResult, status: number, code: string): void => {
  t.equal(response.status, status, `status ${status}`)
  t.match(response.headers['content-type'], /^application\/problem\+json/, 'content-type is application/problem+json')
  t.match(response.body, { status, code, type: String, title: String, detail: String }, `a problem with code ${code}`)
}

const post = (server: ServerProcess, streamId: string, body: string, contentType = 'application/json'): Promise<HttpResult> =>
  server.request('POST', `/streams/${streamId}/events`, { body, headers: { 'content-type': contentType } })

const streamExists = async (server: ServerProcess, streamId: string): Promise<boolean> =>
  (await server.request('GET', `/streams/${streamId}`)).status === 200

t.test('limits and request ids through a real socket', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, {
    DATABASE_URL: db.url,
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    MAX_EVENTS_PER_APPEND: String(MAX_EVENTS_PER_APPEND),
  })
  const responses: HttpResult[] = []
  const seen = <R extends HttpResult>(response: R): R => {
    responses.push(response)
    return response
  }

  t.test('a body of exactly MAX_BODY_BYTES is accepted', async (t) => {
    const body = bodyOfSize(MAX_BODY_BYTES)
    const response = seen(await post(server, 'limits-exact', body))
    t.equal(response.status, 201)
    t.match(response.body, { streamId: 'limits-exact', firstVersion: 1, lastVersion: 1 })
    const read = seen(await server.request('GET', '/streams/limits-exact/events'))
    t.equal(read.body.events[0].data, JSON.parse(body).events[0].data, 'the padded data is stored whole')
  })

  t.test('one byte more is 413 payload-too-large and writes nothing', async (t) => {
    const response = seen(await post(server, 'limits-over', bodyOfSize(MAX_BODY_BYTES + 1)))
    isProblem(t, response, 413, 'payload-too-large')
    t.notOk(await streamExists(server, 'limits-over'), 'the stream was not created')
  })

  t.test('an oversized chunked body without content-length is 413 too', async (t) => {
    const body = bodyOfSize(MAX_BODY_BYTES + 1)
    const chunks = [body.slice(0, 1000), body.slice(1000, 2000), body.slice(2000)]
    const response = await server.pool.request({
      method: 'POST',
      path: '/streams/limits-chunked/events',
      headers: { 'content-type': 'application/json' },
      body: Readable.from(chunks),
    })
    const text = await response.body.text()
    const result = seen({ status: response.statusCode, headers: response.headers, text, body: JSON.parse(text) })
    isProblem(t, result, 413, 'payload-too-large')
    t.notOk(await streamExists(server, 'limits-chunked'), 'the stream was not created')
  })

  t.test('a text/plain body is 415 unsupported-media-type', async (t) => {
    const response = seen(await post(server, 'limits-text', bodyOfSize(200), 'text/plain'))
    isProblem(t, response, 415, 'unsupported-media-type')
    t.notOk(await streamExists(server, 'limits-text'), 'the stream was not created')
  })

  t.test('MAX_EVENTS_PER_APPEND events are accepted, one more is 400 validation-failed', async (t) => {
    const events = (count: number) => Array.from({ length: count }, (_, index) => ({ eventId: randomUUID(), type: 'Counted', data: { index } }))
    const atLimit = seen(await post(server, 'limits-count', JSON.stringify({ events: events(MAX_EVENTS_PER_APPEND) })))
    t.equal(atLimit.status, 201)
    t.match(atLimit.body, { firstVersion: 1, lastVersion: MAX_EVENTS_PER_APPEND })
    const over = seen(await post(server, 'limits-count', JSON.stringify({ events: events(MAX_EVENTS_PER_APPEND + 1) })))
    isProblem(t, over, 400, 'validation-failed')
    const read = seen(await server.request('GET', '/streams/limits-count/events'))
    t.equal(read.body.version, MAX_EVENTS_PER_APPEND, 'the rejected append wrote nothing')
  })

  t.test('malformed JSON is 400 validation-failed', async (t) => {
    const response = seen(await post(server, 'limits-malformed', '{"events": [{"type": "Broken", "data": '))
    isProblem(t, response, 400, 'validation-failed')
    t.notOk(await streamExists(server, 'limits-malformed'), 'the stream was not created')
  })

  t.test('a valid incoming X-Request-Id is echoed', async (t) => {
    for (const id of ['client-req.42:a_b', 'x'.repeat(128)]) {
      const response = seen(await server.request('GET', '/health/live', { headers: { 'x-request-id': id } }))
      t.equal(response.headers['x-request-id'], id, `echoed: ${id.slice(0, 20)}…`)
    }
    const onError = seen(await server.request('POST', '/streams/limits-echo/events', {
      body: '{',
      headers: { 'content-type': 'application/json', 'x-request-id': 'broken-1' },
    }))
    t.equal(onError.status, 400)
    t.equal(onError.headers['x-request-id'], 'broken-1', 'echoed on an error response too')
  })

  t.test('an invalid incoming X-Request-Id is replaced', async (t) => {
    for (const id of ['has spaces in it', 'x'.repeat(129), 'quote"and<angle>']) {
      const response = seen(await server.request('GET', '/health/live', { headers: { 'x-request-id': id } }))
      const replaced = response.headers['x-request-id']
      t.type(replaced, 'string')
      t.not(replaced, id, `replaced: ${id.slice(0, 20)}…`)
      t.match(replaced, /^[A-Za-z0-9._:-]{1,128}$/, 'the replacement is itself a valid id')
    }
  })

  t.test('every response carried an x-request-id, and they are unique when none was sent', async (t) => {
    seen(await server.request('GET', '/no/such/route'))
    t.ok(responses.length >= 10, `${responses.length} responses collected`)
    for (const response of responses) t.match(response.headers['x-request-id'], /^[A-Za-z0-9._:-]{1,128}$/, `x-request-id on a ${response.status}`)
    const generated = await Promise.all(Array.from({ length: 5 }, () => server.request('GET', '/health/live')))
    t.equal(new Set(generated.map((response) => response.headers['x-request-id'])).size, 5)
  })
})

t.test('a bad config value stops start-up with one line naming the variable', async (t) => {
  const cases: { env: Record<string, string>; line: string }[] = [
    { env: { PORT: 'abc' }, line: 'config: PORT must be an integer (got "abc")' },
    { env: { MAX_BODY_BYTES: 'lots' }, line: 'config: MAX_BODY_BYTES must be an integer (got "lots")' },
  ]
  for (const { env, line } of cases) {
    const server = spawnServer(t, { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/annalist_never_created', ...env })
    const exit = await server.waitForExit(30_000)
    t.same(exit, { code: 1, signal: null }, `exit code 1 for ${line}`)
    t.equal(server.stderr, line + '\n', 'exactly one stderr line naming the variable')
    t.same(server.stdout.filter((entry) => entry.trim() !== ''), [], 'nothing on stdout: it stopped before the logger started')
  }
})
