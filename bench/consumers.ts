import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, Pool } from 'undici'
import { connect } from '../src/db/connect.js'
import { withBenchServer, type BenchServer } from './bench-server.js'
import { percentile } from './load.js'
import { loadPayload } from './payload.js'
import { openSubscriber } from './sse-subscriber.js'
import type { Usage } from './cpu-meter.js'
import { attempt, describeCpu, ms, num, ratio, say, verdict } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npm run bench:consumers`: consumer groups (docs/consumer-groups.md).
// [1] events/s through a group with 1, 8 and 32 pollers (BENCH_POLLERS), poll max 100, one ack per batch, over
//     BENCH_CONSUMER_EVENTS (300,000) pre-appended events on 1,000 streams; beside it, in the same run, the SSE
//     subscription replaying the same events and a raw SQL consumer (100 events read, one checkpoint update per batch);
// [2] append acknowledged → delivered to a long poll, at 50% of the maximum append rate measured just before
//     (BENCH_LATENCY_RATE sets the rate instead); beside it, in the same run, one SSE subscriber to the same events,
//     whose delivery is the gap-safe head plus a write: what the head costs, apart from the poll's own path.
// BENCH_CONSUMER_POINTS=latency runs [2] alone (and BENCH_CONSUMER_POINTS=throughput [1] alone).
const TARGETS = { perSecondAt8: 20_000, p99Ms: 25 }
const POLLERS = (process.env.BENCH_POLLERS ?? '1,8,32').split(',').map(Number).filter((count) => count > 0)
const EVENTS = Number(process.env.BENCH_CONSUMER_EVENTS ?? 300_000)
const STREAMS = 1000
const LATENCY_POLLERS = 8
const LATENCY_RATE = Number(process.env.BENCH_LATENCY_RATE ?? 0)
const POINTS = (process.env.BENCH_CONSUMER_POINTS ?? 'throughput,latency').split(',')

// BENCH_DATABASE_NAME names the database when several benches share one Postgres
const settings = { ...attempt(loadBenchSettings), ...(process.env.BENCH_DATABASE_NAME ? {} : { database: 'annalist_bench_consumers' }) }
const payload = attempt(() => loadPayload(settings.anchorsDir))
const json = { 'content-type': 'application/json' }

const call = async <T>(pool: Pool, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<T> => {
  const response = await pool.request({ method, path, headers: json, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await response.body.text()
  if (response.statusCode >= 300) throw new Error(`bench: ${method} ${path} answered ${response.statusCode} ${text.slice(0, 200)}`)
  return JSON.parse(text) as T
}

interface Delivered {
  eventId: string
  globalPosition: number
  delivery: { attempt: number; deadline: string }
}

// Straight into the database through append_events, so the seed is quick.
const seed = async (server: BenchServer): Promise<void> => {
  const sql = connect(server.databaseUrl, { max: 2, applicationName: 'annalist-bench' })
  const perStream = Math.ceil(EVENTS / STREAMS)
  const events = `[${new Array(10).fill(payload.eventJson).join(',')}]`
  for (let round = 0; round < perStream / 10; round++) {
    await sql`
      select count(*)
        from generate_series(0, ${STREAMS - 1}::int) as s
        cross join lateral append_events('default', 'job-' || s, 'any', null, ${events}::text::json)`
  }
  await sql`vacuum analyze events`
  await sql.end({ timeout: 5 })
}

// every poll answered, and those with no event (after waitMs, or cut short by the end of a point)
const polls = { total: 0, empty: 0 }

// Pollers that poll (max 100), then ack the whole batch in one request, until `stop`; `onBatch` sees each batch.
const runPollers = (pool: Pool, group: string, count: number, onBatch: (events: Delivered[], at: number) => void) => {
  let stop = false
  const one = async (): Promise<void> => {
    while (!stop) {
      const { events } = await call<{ events: Delivered[] }>(pool, 'POST', `/consumer-groups/${group}/poll?max=100&waitMs=1000`)
      polls.total++
      if (events.length === 0) polls.empty++
      if (events.length === 0) continue
      onBatch(events, performance.now())
      await call(pool, 'POST', `/consumer-groups/${group}/ack`, { eventIds: events.map((event) => event.eventId) })
    }
  }
  const running = Array.from({ length: count }, one)
  return async () => {
    stop = true
    await Promise.all(running)
  }
}

// What one event cost: CPU of the server process and of its Postgres backends, and Postgres transactions (each
// statement outside a transaction is one), so runs on a loaded machine still compare.
const perEvent = (usage: Usage, events: number, seconds: number): string => {
  const cpu = usage.cpu
  if (!cpu || events === 0) return 'per event: n/a'
  const micros = (percent: number): string => num((percent / 100) * seconds * 1e6 / events, 1)
  const transactions = usage.db ? `, ${num((usage.db.transactions * 100) / events, 1)} Postgres transactions per 100 events` : ''
  return `per event: server ${micros(cpu.serverPercent)} µs CPU, its Postgres backends ${micros(cpu.backendsPercent)} µs${transactions}`
}

// Events/s over BENCH_SECONDS after the warm-up: `count` reports how many were consumed so far.
const measure = async (server: BenchServer, count: () => number): Promise<{ perSecond: number; cpu: string }> => {
  await sleep(settings.warmupSeconds * 1000)
  const stopMeter = await server.meter()
  const [start, began] = [count(), performance.now()]
  await sleep(settings.seconds * 1000)
  const [events, seconds] = [count() - start, (performance.now() - began) / 1000]
  const usage = await stopMeter()
  return { perSecond: events / seconds, cpu: `${describeCpu(usage.cpu)}\n    ${perEvent(usage, events, seconds)}` }
}

const throughput = async (server: BenchServer, pool: Pool, pollers: number): Promise<number> => {
  const group = `throughput-${pollers}`
  await call(pool, 'PUT', `/consumer-groups/${group}`, { start: 'beginning' })
  let acked = 0
  Object.assign(polls, { total: 0, empty: 0 })
  const stop = runPollers(pool, group, pollers, (events) => void (acked += events.length))
  const { perSecond, cpu } = await measure(server, () => acked)
  await stop()
  const exhausted = acked >= EVENTS
  say(`  ${String(pollers).padStart(2)} poller(s)  ${num(perSecond)} events/s, ${num(acked / Math.max(1, polls.total - polls.empty), 1)} events per poll, ${polls.empty} of ${polls.total} polls empty${exhausted ? ' (the group ran out of events: raise BENCH_CONSUMER_EVENTS)' : ''}`)
  say(`    ${cpu}`)
  return perSecond
}

// The same events through GET /subscribe, one connection, counted as they arrive.
const sse = async (server: BenchServer): Promise<number> => {
  const client = new Client(server.origin, { bodyTimeout: 0 })
  const response = await client.request({ method: 'GET', path: '/subscribe?category=job', headers: { accept: 'text/event-stream' } })
  let received = 0
  let tail = ''
  response.body.setEncoding('latin1')
  // a match cannot lie wholly in the 4 characters carried over, so none is counted twice
  response.body.on('data', (chunk: string) => {
    const text = tail + chunk
    received += text.match(/\nid: /g)?.length ?? 0
    tail = text.slice(-4)
  })
  response.body.on('error', () => undefined)
  const { perSecond, cpu } = await measure(server, () => received)
  response.body.destroy()
  await client.destroy().catch(() => undefined)
  say(`  SSE          ${num(perSecond)} events/s (GET /subscribe replaying the same events, one connection)`)
  say(`    ${cpu}`)
  return perSecond
}

// What a hand-written consumer does against the table: read the next 100 events, move its checkpoint.
const rawSql = async (server: BenchServer): Promise<number> => {
  const sql = connect(server.databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  await sql`create table if not exists bench_checkpoint (id int primary key, position bigint not null)`
  await sql`insert into bench_checkpoint values (1, 0) on conflict (id) do update set position = 0`
  let read = 0
  let stop = false
  const loop = (async () => {
    let after = 0
    while (!stop) {
      const rows = await sql<{ globalPosition: number }[]>`
        select global_position as "globalPosition", stream_id, stream_version, event_id, type, data::text, metadata::text, created_at
          from events where tenant = 'default' and global_position > ${after} order by global_position limit 100`
      if (rows.length === 0) break
      after = rows.at(-1)!.globalPosition
      await sql`update bench_checkpoint set position = ${after} where id = 1`
      read += rows.length
    }
  })()
  const { perSecond, cpu } = await measure(server, () => read)
  stop = true
  await loop
  await sql.end({ timeout: 5 })
  say(`  raw SQL      ${num(perSecond)} events/s (one client: select 100 events by position, update a checkpoint row, repeat)`)
  say(`    ${cpu}`)
  return perSecond
}

// The most single-event appends/s 32 connections get, over a few seconds.
const maxAppendRate = async (pool: Pool): Promise<number> => {
  let appended = 0
  const until = performance.now() + Math.max(3, settings.seconds / 2) * 1000
  await Promise.all(Array.from({ length: 32 }, async (_, client) => {
    for (let i = 0; performance.now() < until; i++) {
      await call(pool, 'POST', `/streams/rate-${client}-${i % 10}/events`, { events: [JSON.parse(payload.eventJson)] })
      appended++
    }
  }))
  return appended / Math.max(3, settings.seconds / 2)
}

const latency = async (server: BenchServer, pool: Pool): Promise<number> => {
  const rate = LATENCY_RATE > 0 ? LATENCY_RATE : Math.max(1, Math.round((await maxAppendRate(pool)) / 2))
  const of = LATENCY_RATE > 0 ? 'BENCH_LATENCY_RATE' : '50% of the measured maximum'
  say(`\n[2] append acknowledged → delivered to a long poll (waitMs 1000, ${LATENCY_POLLERS} pollers, ack per batch), open loop at ${num(rate)} single-event appends/s (${of}) over 500 streams`)
  await call(pool, 'PUT', '/consumer-groups/latency', { start: 'end', source: { categories: ['live'] }, ackTimeoutMs: 30_000 })
  const delivered = new Map<number, number>()
  // when the lease statement began (its deadline less the group's ackTimeoutMs, 30 s), on this process's clock
  const leased = new Map<number, number>()
  const leaseStart = (deadline: string): number => Date.parse(deadline) - 30_000 - performance.timeOrigin
  const stop = runPollers(pool, 'latency', LATENCY_POLLERS, (events, at) => events.forEach((event) => {
    delivered.set(event.globalPosition, at)
    leased.set(event.globalPosition, leaseStart(event.delivery.deadline))
  }))
  const streamed = new Map<number, number>()
  const closeSubscriber = await openSubscriber(server.origin, '/subscribe?category=live', (position, at) => void streamed.set(position, at))
  const acked = new Map<number, number>()
  const drive = async (seconds: number, record: boolean): Promise<void> => {
    const started = performance.now()
    const inflight: Promise<void>[] = []
    for (let i = 0; i < Math.round(rate * seconds); i++) {
      const wait = started + (i * 1000) / rate - performance.now()
      if (wait > 1) await sleep(wait)
      const appended = call<{ lastPosition: number }>(pool, 'POST', `/streams/live-${i % 500}/events`, { events: [JSON.parse(payload.eventJson)] })
      inflight.push(appended.then((body) => void (record && acked.set(body.lastPosition, performance.now()))))
    }
    await Promise.all(inflight)
  }
  await drive(settings.warmupSeconds, false)
  // the tables as a store in use has them, vacuumed and analyzed: on a database made seconds ago autovacuum has not
  // come yet, and the planner, knowing nothing of the group's tables, scans them whole
  const sql = connect(server.databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  await sql`vacuum analyze`
  await sql.end({ timeout: 5 })
  const stopMeter = await server.meter()
  const metered = performance.now()
  const pollsBefore = { ...polls }
  await drive(settings.seconds, true)
  const waitStarted = performance.now()
  const pending = (): boolean => [...acked.keys()].some((position) => !delivered.has(position) || !streamed.has(position))
  while (pending() && performance.now() - waitStarted < 10_000) await sleep(10)
  const usage = await stopMeter()
  const answered = polls.total - pollsBefore.total - (polls.empty - pollsBefore.empty)
  // per event appended and delivered: the appends' own work is in these figures too
  const cpu = `${describeCpu(usage.cpu)}\n    ${perEvent(usage, acked.size, (performance.now() - metered) / 1000)} (append, head, SSE and delivery together); ${num(acked.size / Math.max(1, answered), 1)} events per poll answered with events`
  await stop()
  await closeSubscriber()
  const lags = (at: Map<number, number>): number[] =>
    [...acked].map(([position, ackedAt]) => Math.max(0, (at.get(position) ?? Number.POSITIVE_INFINITY) - ackedAt)).sort((a, b) => a - b)
  const latencies = lags(delivered)
  const sseLatencies = lags(streamed)
  const missing = [...acked.keys()].filter((position) => !delivered.has(position)).length
  const p99 = percentile(latencies, 0.99)
  say(`  ours         p50 ${ms(percentile(latencies, 0.5))}, p99 ${ms(p99)}, max ${ms(latencies.at(-1) ?? Number.NaN)} over ${num(latencies.length)} appends; ${missing} not delivered within 10 s`)
  say(`  SSE          p50 ${ms(percentile(sseLatencies, 0.5))}, p99 ${ms(percentile(sseLatencies, 0.99))}, max ${ms(sseLatencies.at(-1) ?? Number.NaN)} (one GET /subscribe of the same events, same run)`)
  // per event, the steps of its way (each p50 / p99): the head and an SSE write; the wait until a lease statement
  // took it, which includes the head; the lease statement, the response and the bench reading it
  const steps = (from: Map<number, number>, to: Map<number, number>): string => {
    const spans = [...acked.keys()].filter((position) => from.has(position) && to.has(position))
      .map((position) => to.get(position)! - from.get(position)!).sort((a, b) => a - b)
    return `${ms(percentile(spans, 0.5))} / ${ms(percentile(spans, 0.99))}`
  }
  say(`  steps        ack → SSE received ${steps(acked, streamed)}; ack → lease statement began ${steps(acked, leased)}; lease began → poll answer received ${steps(leased, delivered)} (p50 / p99)`)
  say(`    ${cpu}`)
  say(`    target       p99 <= ${TARGETS.p99Ms} ms: ${verdict(p99 <= TARGETS.p99Ms && missing === 0)}`)
  return p99
}

const throughputs = async (server: BenchServer, pool: Pool): Promise<void> => {
  const figures = new Map<number, number>()
  for (const pollers of POLLERS) figures.set(pollers, await throughput(server, pool, pollers))
  const sseRate = await sse(server)
  const sqlRate = await rawSql(server)
  for (const [pollers, perSecond] of figures) say(`  ratio        ${pollers} poller(s): ${ratio(perSecond, sseRate)} of SSE, ${ratio(perSecond, sqlRate)} of raw SQL`)
  const at8 = figures.get(8)
  if (at8 !== undefined) say(`    target       >= ${num(TARGETS.perSecondAt8)} events/s with 8 pollers: ${verdict(at8 >= TARGETS.perSecondAt8)}`)
}

// BENCH_SERVER_ROOT: another checkout's server (built there) under this bench, for old-against-new runs
await withBenchServer(settings, 900 + settings.seconds * (POLLERS.length + 4) * 2, async (server) => {
  say(`server: ${server.describe}`)
  const pool = new Pool(server.origin, { connections: 128 })
  try {
    if (POINTS.includes('throughput')) {
      process.stderr.write(`bench: seeding ${num(EVENTS)} events on ${num(STREAMS)} streams\n`)
      await seed(server)
      say(`\n[1] events/s through a group (poll max 100, ack per batch), ${num(EVENTS)} pre-appended events on ${num(STREAMS)} streams; ${settings.seconds} s after ${settings.warmupSeconds} s of warm-up`)
      await throughputs(server, pool)
    }
    if (POINTS.includes('latency')) await latency(server, pool)
  } finally {
    await pool.close()
  }
}, process.env.BENCH_SERVER_ROOT ? path.resolve(process.env.BENCH_SERVER_ROOT) : undefined)
