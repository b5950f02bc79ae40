import t from 'tap'
import { testDatabase } from '../helpers/test-database.js'
import { startServer } from '../helpers/server-process.js'
import { metricValue, RawClient } from '../helpers/raw-client.js'
import { waitFor } from '../helpers/wait-for.js'

// Issue 18: no send timeout (stalled readers held their memory until they went away), no timeout once headers are
// complete (a POST announcing 1000 bytes that sent 5 stayed open past 300 s; 20,000 of them reached the open-file
// limit). SPEC "Details": a connection that takes no data for SEND_TIMEOUT_MS, or whose request does not arrive
// within REQUEST_TIMEOUT_MS, is closed; MAX_CONNECTIONS caps the connections. Short timeouts here, set by env.
const SEND_TIMEOUT_MS = 3000
const REQUEST_TIMEOUT_MS = 1000
const MAX_CONNECTIONS = 12
// 20 events of 500 KiB: 10 MiB, more than the kernel takes of a response the client does not read (some 4 MiB)
const EVENTS = 20
const PAD = 500 * 1024

t.setTimeout(240_000)

const db = await testDatabase(t)
const server = await startServer(t, {
  DATABASE_URL: db.url!,
  SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS),
  REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  MAX_CONNECTIONS: String(MAX_CONNECTIONS),
})
const pad = 'x'.repeat(PAD)
for (let n = 1; n <= EVENTS; n++) {
  const response = await server.request('POST', '/streams/big-1/events', { body: { events: [{ type: 'Big', data: { n, pad } }] } })
  if (response.status !== 201) throw new Error(`append ${n}: ${response.status} ${response.text.slice(0, 200)}`)
}

// the end of a chunked HTTP body: a response that has it was sent whole
const WHOLE = '\r\n0\r\n\r\n'
const closedLogs = (): { time: number; pendingBytes: number }[] =>
  server.logs().filter((line) => line.msg === 'connection closed: it took no data for SEND_TIMEOUT_MS') as never

t.test('a reader that takes no data for SEND_TIMEOUT_MS is closed: SSE and plain responses alike', async (t) => {
  const paths = ['/subscribe?after=0', '/events?limit=1000', '/streams/big-1/events?limit=1000', '/streams/big-1/load']
  const openedAt = Date.now()
  const readers = await Promise.all(paths.map(async (path) => (await RawClient.open(server.port, { reading: false })).get(path)))
  t.teardown(() => readers.forEach((reader) => reader.close()))
  await waitFor('the server to close the four', () => closedLogs().length >= paths.length, { timeoutMs: 60_000, intervalMs: 50 })
  for (const line of closedLogs()) {
    t.ok(line.time - openedAt >= SEND_TIMEOUT_MS, `closed ${line.time - openedAt} ms after the request, not before SEND_TIMEOUT_MS`)
    t.ok(line.pendingBytes > 0, 'with bytes still waiting for the client')
  }
  t.equal(await metricValue(server, 'annalist_connections_closed_total', 'reason="send-timeout"'), paths.length, 'counted in /metrics')
  // what the kernel took before the server gave up is still delivered, then the connection ends
  for (const [index, reader] of readers.entries()) {
    reader.resume()
    await reader.closed
    t.ok(reader.text.startsWith('HTTP/1.1 200'), `${paths[index]}: the response had begun`)
    t.notOk(reader.text.endsWith(WHOLE), `${paths[index]}: and ended unfinished after ${reader.received} bytes`)
  }
  t.equal((await server.request('GET', '/health/live')).status, 200)
})

t.test('a reader that is slow but keeps taking data is never cut off', async (t) => {
  const reader = await RawClient.open(server.port, { reading: false })
  t.teardown(() => reader.close())
  reader.get('/events?limit=16').send('')
  // ~1 MiB/s: 512 KiB at a time, then half a second of pause (well within SEND_TIMEOUT_MS, even on a loaded machine)
  let taken = 0
  reader.socket.on('data', (chunk: Buffer) => {
    taken += chunk.length
    if (taken < 512 * 1024) return
    taken = 0
    reader.socket.pause()
    setTimeout(() => reader.socket.resume(), 500)
  })
  reader.resume()
  await waitFor('the whole page', () => reader.text.endsWith(WHOLE) || reader.isClosed, { timeoutMs: 120_000, intervalMs: 50 })
  t.ok(reader.text.endsWith(WHOLE), `the whole page arrived (${reader.received} bytes)`)
  t.ok(reader.received > 16 * PAD, 'all 16 events of it')
  t.notOk(reader.isClosed, 'and the connection stays open for the next request')
})

t.test('a request whose body does not arrive within REQUEST_TIMEOUT_MS is answered 408 and closed', async (t) => {
  const slow = await RawClient.open(server.port)
  const started = Date.now()
  slow.send('POST /streams/slow-1/events HTTP/1.1\r\nhost: annalist\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"eve')
  await slow.closed
  const elapsed = Date.now() - started
  t.ok(elapsed >= REQUEST_TIMEOUT_MS, `closed after ${elapsed} ms, not before REQUEST_TIMEOUT_MS`)
  t.match(slow.text, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(slow.text, /content-type: application\/problem\+json/i)
  t.match(JSON.parse(slow.text.slice(slow.text.indexOf('\r\n\r\n') + 4)), { status: 408, code: 'request-timeout' })
  t.equal((await server.request('GET', '/streams/slow-1')).status, 404, 'and nothing was written')

  const headers = await RawClient.open(server.port)
  headers.send('GET /health/live HTTP/1.1\r\nhost: annalist\r\n')
  await headers.closed
  t.match(headers.text, /^HTTP\/1\.1 408 /, 'headers that never end are a 408 too')
  t.ok((await metricValue(server, 'annalist_connections_closed_total', 'reason="request-timeout"')) >= 2, 'counted in /metrics')
})

t.test('past MAX_CONNECTIONS a new connection is refused at once; the others are served', async (t) => {
  // streams that read: they neither time out nor stall, so they hold their connections; opened one by one until the
  // server refuses one (this test's own keep-alive connection, and any the server has not yet seen close, count too)
  const holders: RawClient[] = []
  t.teardown(() => holders.forEach((holder) => holder.close()))
  let refused: RawClient | undefined
  while (!refused && holders.length <= MAX_CONNECTIONS) {
    const client = (await RawClient.open(server.port)).get('/subscribe?after=1000000')
    const answered = await waitFor('an answer or a close', () => (client.text.startsWith('HTTP/1.1 200') ? 'served' : client.isClosed && 'closed'), { timeoutMs: 30_000 })
    if (answered === 'served') holders.push(client)
    else refused = client
  }
  t.ok(refused, `the connection after ${holders.length} streams was refused`)
  t.equal(refused?.received, 0, 'closed without an answer')
  t.ok(holders.length >= MAX_CONNECTIONS - 2 && holders.length < MAX_CONNECTIONS, 'once MAX_CONNECTIONS were open, this test’s own one included')
  t.equal((await server.request('GET', '/health/live')).status, 200, 'a client with a connection already open is served')
  t.ok((await metricValue(server, 'annalist_connections_closed_total', 'reason="connection-limit"')) >= 1, 'counted in /metrics')
  holders.pop()!.close()
  await waitFor('the server to see one holder go', async () => (await metricValue(server, 'annalist_connections_open')) < MAX_CONNECTIONS)
  const next = await RawClient.open(server.port)
  next.send('GET /health/live HTTP/1.1\r\nhost: annalist\r\nconnection: close\r\n\r\n')
  await next.closed
  t.match(next.text, /^HTTP\/1\.1 200 /, 'below the cap again, a new connection is served')
})
