import t from 'tap'
import { randomUUID } from 'node:crypto'
import { connect as connectTcp, type Socket } from 'node:net'
import { testDatabase } from '../helpers/test-database.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'

const CONCURRENT = 20
const LOCKED_STREAM = 'drain-locked'

interface Sent {
  streamId: string
  eventIds: string[]
}

const appendBody = (eventIds: string[], expectedVersion: number | 'any') => ({
  expectedVersion,
  events: eventIds.map((eventId, index) => ({ eventId, type: 'Drained', data: { index } })),
})

// The raw response text once it is complete (headers plus content-length bytes), or undefined.
const completeResponse = (text: string): string | undefined => {
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))
  return length && text.length >= end + 4 + Number(length[1]) ? text : undefined
}

// One append whose body arrives slowly, over a raw socket: `Expect: 100-continue` makes the server
// answer as soon as it has taken the request on, which is the proof that it was accepted before SIGTERM.
const slowAppend = async (server: ServerProcess, sent: Sent) => {
  const body = JSON.stringify(appendBody(sent.eventIds, 'any'))
  const socket: Socket = connectTcp(server.port, '127.0.0.1')
  let received = ''
  let failure: Error | undefined
  let closed = false
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (received += chunk))
  socket.on('error', (error) => (failure = error))
  socket.on('close', () => (closed = true))
  await waitFor('the slow request to connect', () => failure ?? socket.readyState === 'open')
  socket.write(
    `POST /streams/${sent.streamId}/events HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nexpect: 100-continue\r\n\r\n`,
  )
  await waitFor('100 Continue', () => {
    if (failure || closed) throw new Error(`the slow request failed before 100 Continue: ${failure?.message ?? 'closed'}`)
    return /^HTTP\/1\.1 100 Continue\r\n\r\n/.test(received)
  })
  socket.write(body.slice(0, 20))
  return {
    finish: async (): Promise<{ status: number; text: string; failure?: Error }> => {
      socket.write(body.slice(20))
      const response = await waitFor('the slow response', () => {
        const rest = received.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')
        return completeResponse(rest) ?? (failure || closed ? rest : undefined)
      })
      socket.destroy()
      return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0), text: response, failure }
    },
  }
}

const connectionRefused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'))
  })

t.test('SIGTERM finishes every accepted request, refuses new connections and exits 0', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url, DATABASE_POOL_SIZE: '40' })
  const seeded = await server.request('POST', `/streams/${LOCKED_STREAM}/events`, { body: appendBody([randomUUID()], 'any') })
  t.equal(seeded.status, 201, 'the stream to contend on exists')

  // Hold the stream's row lock so the appends stay in flight inside the server for as long as we need.
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  let locked = false
  const holder = db.sql.begin(async (tx) => {
    await tx`select version from streams where tenant = 'default' and stream_id = ${LOCKED_STREAM} for update`
    locked = true
    await released
  })
  await waitFor('the test to hold the stream lock', () => locked)

  // half append whatever the version, half race for version 1 (which the seed already took: 409s)
  const sent: Sent[] = Array.from({ length: CONCURRENT }, () => ({ streamId: LOCKED_STREAM, eventIds: [randomUUID(), randomUUID()] }))
  const appends = Promise.allSettled(
    sent.map((request, index) =>
      server.request('POST', `/streams/${request.streamId}/events`, { body: appendBody(request.eventIds, index % 2 === 0 ? 'any' : 1) }),
    ),
  )
  const slowSent: Sent = { streamId: 'drain-slow', eventIds: [randomUUID(), randomUUID()] }
  const slow = await slowAppend(server, slowSent)
  // group commit: the first append waits on the stream lock inside the database, the others wait for it in the server
  await waitFor(`${CONCURRENT} appends in flight behind the stream lock`, async () => {
    const [row] = await db.sql<{ waiting: number }[]>`
      select count(*)::int as waiting from pg_stat_activity
       where application_name = ${server.applicationName} and wait_event_type = 'Lock'`
    const metrics = (await server.request('GET', '/metrics')).text
    const queued = Number(/^annalist_append_waiting (\d+)$/m.exec(metrics)?.[1])
    return row!.waiting === 1 && queued === CONCURRENT - 1
  })

  server.kill('SIGTERM')
  await waitFor('the server to log that it is draining', () => server.logs().some((entry) => entry.msg === 'draining' && entry.signal === 'SIGTERM'))
  await waitFor('new connections to be refused', () => connectionRefused(server.port))
  t.equal(server.exit, undefined, 'the process is still draining while requests are in flight')

  release()
  await holder
  const slowResult = await slow.finish()
  const results = await appends

  t.equal(slowResult.failure, undefined, 'the slow request saw no socket error')
  t.equal(slowResult.status, 201, 'the slow append, accepted before SIGTERM, completes with 201')
  const acknowledged: { sent: Sent; body: any }[] = [{ sent: slowSent, body: JSON.parse(slowResult.text.slice(slowResult.text.indexOf('\r\n\r\n') + 4)) }]
  for (const [index, result] of results.entries()) {
    if (result.status === 'rejected') {
      t.fail(`in-flight append ${index} failed at the socket: ${String(result.reason)}`)
      continue
    }
    const { status, body } = result.value
    t.ok(status === 201 || status === 409, `in-flight append ${index} completed with ${status}`)
    if (status === 409) t.equal(body.code, 'wrong-expected-version', 'a 409 is a lost race, not a drain artefact')
    if (status === 201) acknowledged.push({ sent: sent[index]!, body })
  }
  t.ok(acknowledged.length >= CONCURRENT / 2 + 1, `${acknowledged.length} appends acknowledged`)

  const exit = await server.waitForExit(15_000)
  t.same(exit, { code: 0, signal: null }, 'the process exits with code 0')
  t.ok(server.logs().some((entry) => entry.msg === 'closed'), 'it logged that it closed')
  t.ok(await connectionRefused(server.port), 'nothing listens on the port any more')

  for (const { sent: request, body } of acknowledged) {
    const rows = await db.sql<{ eventId: string; streamVersion: number; globalPosition: number }[]>`
      select event_id::text as "eventId", stream_version as "streamVersion", global_position as "globalPosition"
        from events
       where tenant = 'default' and stream_id = ${request.streamId} and event_id = any(${request.eventIds}::uuid[])
       order by stream_version`
    t.same(rows.map((row) => row.eventId), request.eventIds, `the acknowledged events of ${body.firstVersion}..${body.lastVersion} are stored in order`)
    t.same(
      [rows[0]?.streamVersion, rows.at(-1)?.streamVersion, rows[0]?.globalPosition, rows.at(-1)?.globalPosition],
      [body.firstVersion, body.lastVersion, body.firstPosition, body.lastPosition],
      'at the acknowledged versions and positions',
    )
  }
  const [row] = await db.sql<{ total: number }[]>`select count(*)::int as total from events where stream_id = ${LOCKED_STREAM}`
  t.equal(row?.total, 1 + 2 * (acknowledged.length - 1), 'nothing unacknowledged was written to the contended stream')
})
