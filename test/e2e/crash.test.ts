import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import type { Sql } from '../../src/db/connect.js'
import { testDatabase } from '../helpers/test-database.js'
import { startServer, type HttpResult, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'
import { waitForSessionsToEnd } from '../helpers/server-sessions.js'

const CLIENTS = 16
const SHARED_STREAMS = ['shared-0', 'shared-1', 'shared-2']
const ACKS_BEFORE_KILL = 1000
const MAX_STEPS_PER_CLIENT = 20_000
const PAGE = 100

interface Attempt {
  client: number
  streamId: string
  expectedVersion: number
  eventIds: string[]
}

interface Ack {
  attempt: Attempt
  firstVersion: number
  lastVersion: number
  firstPosition: number
  lastPosition: number
}

interface Load {
  killed: boolean
  inFlight: number
  acks: Ack[]
  // answered 409 wrong-expected-version: definitely not written
  rejected: Attempt[]
  // no answer: the connection died with the server
  unacked: Attempt[]
  unexpected: string[]
}

interface Row {
  eventId: string
  streamId: string
  streamVersion: number
  globalPosition: number
}

const append = (server: ServerProcess, attempt: Attempt): Promise<HttpResult> =>
  server.request('POST', `/streams/${attempt.streamId}/events`, {
    body: {
      expectedVersion: attempt.expectedVersion,
      events: attempt.eventIds.map((eventId, index) => ({ eventId, type: 'Ticked', data: { client: attempt.client, index } })),
    },
  })

const ackOf = (attempt: Attempt, body: any): Ack => ({
  attempt,
  firstVersion: body.firstVersion,
  lastVersion: body.lastVersion,
  firstPosition: body.firstPosition,
  lastPosition: body.lastPosition,
})

// One client: appends one request at a time, mostly to its own two streams, every third to a shared one,
// always with the expectedVersion it last saw; a 409 teaches it the current version.
const runClient = async (server: ServerProcess, client: number, load: Load): Promise<void> => {
  const own = [`own-${client}-a`, `own-${client}-b`]
  const known = new Map<string, number>()
  for (let step = 0; step < MAX_STEPS_PER_CLIENT && !load.killed; step++) {
    const streamId = step % 3 === 2 ? SHARED_STREAMS[(client + step) % SHARED_STREAMS.length]! : own[step % 2]!
    const count = 1 + ((client + step) % 4)
    const attempt: Attempt = { client, streamId, expectedVersion: known.get(streamId) ?? 0, eventIds: Array.from({ length: count }, () => randomUUID()) }
    let response: HttpResult
    load.inFlight++
    try {
      response = await append(server, attempt)
    } catch (error) {
      if (load.killed) load.unacked.push(attempt)
      else load.unexpected.push(`client ${client} failed before the kill: ${String(error)}`)
      return
    } finally {
      load.inFlight--
    }
    const { status, body } = response
    if (status === 201 && body.firstVersion === attempt.expectedVersion + 1 && body.lastVersion === attempt.expectedVersion + count) {
      load.acks.push(ackOf(attempt, body))
      known.set(streamId, body.lastVersion)
    } else if (status === 409 && body?.code === 'wrong-expected-version' && body.currentVersion !== attempt.expectedVersion) {
      load.rejected.push(attempt)
      known.set(streamId, body.currentVersion)
    } else {
      load.unexpected.push(`client ${client} got ${status} ${response.text} for ${JSON.stringify(attempt)}`)
      return
    }
  }
}

const storedRows = (sql: Sql, eventIds?: string[]): Promise<Row[]> => sql<Row[]>`
  select event_id::text as "eventId", stream_id as "streamId", stream_version as "streamVersion", global_position as "globalPosition"
    from events
   where tenant = 'default'
   ${eventIds ? sql`and event_id = any(${eventIds}::uuid[])` : sql``}
   order by global_position`

const brief = (row: Row | { eventId: string; streamVersion: number; globalPosition: number }) => `${row.eventId}@${row.streamVersion}#${row.globalPosition}`

interface Expectation {
  acks: Ack[]
  // ids of requests that were never answered: each may be stored or not (but all or none of one request)
  undecided: Attempt[]
  // ids answered with 409: never stored
  absent: string[]
}

// What the clients were told, against what is stored: acknowledged appends at their acknowledged versions
// and positions, unanswered ones whole or not at all, 409s nowhere, and nothing nobody sent.
const checkAnswers = (t: Test, byId: Map<string, Row>, expect: Expectation): void => {
  const ackProblems: string[] = []
  for (const ack of expect.acks) {
    const stored = ack.attempt.eventIds.map((id) => byId.get(id))
    stored.forEach((row, index) => {
      if (!row) ackProblems.push(`${ack.attempt.eventIds[index]} acknowledged in ${ack.attempt.streamId} is missing`)
      else if (row.streamId !== ack.attempt.streamId || row.streamVersion !== ack.firstVersion + index) ackProblems.push(`${brief(row)} in ${row.streamId} != ack ${JSON.stringify(ack)}`)
      else if (index > 0 && row.globalPosition <= stored[index - 1]!.globalPosition) ackProblems.push(`${brief(row)} positions not increasing within the append`)
    })
    if (stored[0]?.globalPosition !== ack.firstPosition || stored.at(-1)?.globalPosition !== ack.lastPosition) {
      ackProblems.push(`positions of ${JSON.stringify(ack)} stored as ${stored[0]?.globalPosition}..${stored.at(-1)?.globalPosition}`)
    }
  }
  t.same(ackProblems, [], `every one of ${expect.acks.length} acknowledged appends is stored at its acknowledged versions and positions`)

  const partial = expect.undecided.filter((attempt) => {
    const present = attempt.eventIds.filter((id) => byId.has(id)).length
    return present !== 0 && present !== attempt.eventIds.length
  })
  t.same(partial, [], 'each unanswered append is stored whole or not at all')
  t.same(expect.absent.filter((id) => byId.has(id)), [], 'no event of an append answered 409 is stored')
  const sent = new Set([...expect.acks.map((ack) => ack.attempt), ...expect.undecided].flatMap((attempt) => attempt.eventIds))
  t.same([...byId.values()].filter((row) => !sent.has(row.eventId)).map(brief), [], 'every stored event was sent by some client')
}

const checkVersions = async (t: Test, sql: Sql, streams: Map<string, Row[]>): Promise<void> => {
  const heads = new Map((await sql<{ streamId: string; version: number }[]>`
    select stream_id as "streamId", version from streams where tenant = 'default'`).map((row) => [row.streamId, row.version]))
  const problems: string[] = []
  for (const [streamId, events] of streams) {
    const versions = events.map((row) => row.streamVersion)
    // rows come in position order, so contiguous versions 1..N here also mean positions grow with versions
    if (versions.some((version, index) => version !== index + 1)) problems.push(`${streamId} versions in position order: ${versions.join(',')}`)
    if (heads.get(streamId) !== events.length) problems.push(`${streamId} head ${heads.get(streamId)} but ${events.length} events`)
  }
  if (heads.size !== streams.size) problems.push(`${heads.size} stream heads for ${streams.size} streams with events`)
  t.same(problems, [], `all ${streams.size} streams have contiguous versions 1..N, in position order, matching their head`)
}

const checkStreamReads = async (t: Test, server: ServerProcess, streams: Map<string, Row[]>): Promise<void> => {
  const problems: string[] = []
  for (const [streamId, events] of streams) {
    const read: string[] = []
    let from: number | null = 1
    for (let page = 0; from !== null && page <= events.length / PAGE + 2; page++) {
      const response = await server.request('GET', `/streams/${streamId}/events?from=${from}&limit=${PAGE}`)
      if (response.status !== 200 || response.body.version !== events.length) problems.push(`${streamId} page from ${from}: ${response.status} version ${response.body?.version}`)
      read.push(...(response.body?.events ?? []).map(brief))
      from = response.body?.next ?? null
    }
    if (from !== null) problems.push(`${streamId}: paging did not end`)
    if (JSON.stringify(read) !== JSON.stringify(events.map(brief))) problems.push(`${streamId}: read ${read.length} events, stored ${events.length}, or in another order`)
  }
  t.same(problems, [], 'GET /streams/{id}/events, paged with next, returns each stream exactly as stored')
}

const checkLogRead = async (t: Test, server: ServerProcess, rows: Row[]): Promise<void> => {
  const log: string[] = []
  let after: number | null = 0
  let lastPosition = 0
  let ordered = true
  for (let page = 0; after !== null && page <= rows.length / 1000 + 2; page++) {
    const response = await server.request('GET', `/events?after=${after}&limit=1000`)
    for (const event of response.body?.events ?? []) {
      ordered &&= event.globalPosition > lastPosition
      lastPosition = event.globalPosition
      log.push(brief(event))
    }
    after = response.body?.next ?? null
  }
  t.equal(after, null, 'GET /events paging reaches the end')
  t.ok(ordered, 'GET /events returns strictly increasing global positions')
  t.same(log, rows.map(brief), `GET /events from 0 returns all ${rows.length} stored events exactly once, in order`)
}

// Every invariant of SPEC "Append" after a crash, read straight from SQL and again through the API.
const checkStore = async (t: Test, sql: Sql, server: ServerProcess, expect: Expectation): Promise<number> => {
  const rows = await storedRows(sql)
  const byId = new Map(rows.map((row) => [row.eventId, row]))
  t.equal(byId.size, rows.length, 'no event id is stored twice')
  const streams = new Map<string, Row[]>()
  for (const row of rows) streams.set(row.streamId, [...(streams.get(row.streamId) ?? []), row])
  checkAnswers(t, byId, expect)
  await checkVersions(t, sql, streams)
  await checkStreamReads(t, server, streams)
  await checkLogRead(t, server, rows)
  return rows.length
}

interface Retries {
  acks: Ack[]
  // ids of retries answered 409 wrong-expected-version
  refused: string[]
  committedBeforeKill: number
}

// Retry every unanswered request as it was sent: a commit before the kill answers 200 duplicate with the
// stored run, a lost one is written now (201) or, on a shared stream that moved on, is a plain 409
// wrong-expected-version. Never 409 duplicate-event-id.
const retryUnanswered = async (t: Test, sql: Sql, server: ServerProcess, unanswered: Attempt[]): Promise<Retries> => {
  const retries: Retries = { acks: [], refused: [], committedBeforeKill: 0 }
  for (const attempt of unanswered) {
    const stored = await storedRows(sql, attempt.eventIds)
    const response = await append(server, attempt)
    const what = `retry of ${attempt.eventIds.length} events to ${attempt.streamId} at ${attempt.expectedVersion}`
    t.not(response.body?.code, 'duplicate-event-id', `${what} is never 409 duplicate-event-id`)
    if (stored.length === attempt.eventIds.length) {
      retries.committedBeforeKill++
      t.equal(response.status, 200, `${what}, committed before the kill, answers 200`)
      t.match(response.body, {
        duplicate: true,
        firstVersion: stored[0]!.streamVersion,
        lastVersion: stored.at(-1)!.streamVersion,
        firstPosition: stored[0]!.globalPosition,
        lastPosition: stored.at(-1)!.globalPosition,
      }, 'with the stored run\'s versions and positions')
      retries.acks.push(ackOf(attempt, response.body))
    } else if (response.status === 201) {
      t.equal(stored.length, 0, `${what} was not stored before, and is written now`)
      t.equal(response.body.firstVersion, attempt.expectedVersion + 1, 'right after the version it expected')
      retries.acks.push(ackOf(attempt, response.body))
    } else {
      t.equal(stored.length, 0, `${what} was not stored before`)
      t.ok(SHARED_STREAMS.includes(attempt.streamId), `${what} is refused only on a shared stream`)
      t.match(response, { status: 409, body: { code: 'wrong-expected-version' } }, `${what} answers 409 wrong-expected-version`)
      retries.refused.push(...attempt.eventIds)
    }
  }
  return retries
}

// Runs the clients until enough appends are acknowledged, then SIGKILLs the server with requests in flight.
const loadThenKill = async (t: Test, server: ServerProcess): Promise<Load> => {
  const load: Load = { killed: false, inFlight: 0, acks: [], rejected: [], unacked: [], unexpected: [] }
  const started = Date.now()
  const clients = Array.from({ length: CLIENTS }, (_, client) => runClient(server, client, load))
  await waitFor('half the acknowledged appends', () => load.unexpected.length > 0 || load.acks.length >= ACKS_BEFORE_KILL / 2, { timeoutMs: 60_000, intervalMs: 2 })
  const metrics = (await server.request('GET', '/metrics')).text
  const counter = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1])
  const [batches, batched] = [counter('annalist_append_batches_total'), counter('annalist_append_batched_appends_total')]
  t.ok(batched > batches, `the appends are group-committed (${batched} appends in ${batches} batches so far)`)
  await waitFor(
    `${ACKS_BEFORE_KILL} acknowledged appends with requests in flight`,
    () => load.unexpected.length > 0 || (load.acks.length >= ACKS_BEFORE_KILL && load.inFlight >= CLIENTS / 2),
    { timeoutMs: 60_000, intervalMs: 2 },
  )
  const inFlightAtKill = load.inFlight
  load.killed = true
  server.kill('SIGKILL')
  // bounded: every client stops at its first unanswered request, and the dead server answers none
  await Promise.all(clients)
  t.comment(`killed after ${Date.now() - started} ms of load with ${inFlightAtKill} requests in flight`)
  t.same(load.unexpected, [], 'no failure or unexpected answer before the kill')
  t.ok(inFlightAtKill >= CLIENTS / 2, `requests were in flight at the kill (${inFlightAtKill})`)
  t.ok(load.unacked.length >= 1, `${load.unacked.length} requests went unanswered`)
  t.same(await server.waitForExit(), { code: null, signal: 'SIGKILL' }, 'the server died of SIGKILL')
  return load
}

t.test('a SIGKILL mid-load loses no acknowledged event, and retries of unanswered appends are safe', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url })
  const load = await loadThenKill(t, server)

  await waitForSessionsToEnd(db.sql, server)

  const restarted = await startServer(t, { DATABASE_URL: db.url })
  const rejected = load.rejected.flatMap((attempt) => attempt.eventIds)
  const checked = await checkStore(t, db.sql, restarted, { acks: load.acks, undecided: load.unacked, absent: rejected })
  const acknowledgedEvents = load.acks.reduce((sum, ack) => sum + ack.attempt.eventIds.length, 0)
  t.comment(`${load.acks.length} appends (${acknowledgedEvents} events) acknowledged, ${load.rejected.length} answered 409, ${load.unacked.length} unanswered; ${checked} stored events checked`)

  const retries = await retryUnanswered(t, db.sql, restarted, load.unacked)
  t.comment(`${retries.committedBeforeKill} of ${load.unacked.length} unanswered appends had committed before the kill`)
  await checkStore(t, db.sql, restarted, { acks: [...load.acks, ...retries.acks], undecided: [], absent: [...rejected, ...retries.refused] })
})
