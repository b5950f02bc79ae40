import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { connect } from '../src/db/connect.js'
import { withBenchServer, type BenchServer } from './bench-server.js'
import type { CpuShare } from './cpu-meter.js'
import { percentile } from './load.js'
import { ORDER_DEFINITION, seedOrders } from './orders.js'
import { loadPayload } from './payload.js'
import { attempt, describeCpu, ms, num, say, verdict } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npm run bench:backfill`: an atomic rebuild of a declarative projection over BENCH_BACKFILL_EVENTS
// (1,000,000) pre-appended events, with maxConcurrency 1 and 4, while BENCH_BACKFILL_READERS (4) clients
// keep reading documents; read latency during each rebuild against the same readers on an idle
// projection; and, as the raw-Postgres reference, the same read model computed by one SQL statement.
// issue 12: a rebuild of 1,000,000 events within 30 s at maxConcurrency 1
const TARGETS = { seconds: 30, readP99Ratio: 3 }
const EVENTS = Number(process.env.BENCH_BACKFILL_EVENTS ?? 1_000_000)
const READERS = Number(process.env.BENCH_BACKFILL_READERS ?? 4)
const CONCURRENCY = (process.env.BENCH_BACKFILL_CONCURRENCY ?? '1,4').split(',').map(Number)
// BENCH_BACKFILL_BATCH_SIZES: the request's batchSize, each in turn (default: none, the server's)
const BATCH_SIZES = (process.env.BENCH_BACKFILL_BATCH_SIZES ?? '').split(',').filter(Boolean).map(Number)
if (BATCH_SIZES.length === 0) BATCH_SIZES.push(0)
const IDLE_SECONDS = 8
const EVENTS_PER_STREAM = 10

// a database of its own, so other benchmarks running beside it are not dropped under it (BENCH_DATABASE_NAME names another)
const settings = { ...attempt(loadBenchSettings), ...(process.env.BENCH_DATABASE_NAME ? {} : { database: 'annalist_bench_backfill' }) }
// BENCH_SERVER_ROOT: another checkout's server (built there) under this bench, for old-against-new runs
const serverRoot = process.env.BENCH_SERVER_ROOT ? path.resolve(process.env.BENCH_SERVER_ROOT) : undefined
const payload = attempt(() => loadPayload(settings.anchorsDir))
const data = JSON.parse(payload.eventJson) as { data: unknown; metadata: unknown }
const STREAMS = EVENTS / EVENTS_PER_STREAM

const request = async (pool: Pool, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<any> => {
  const response = await pool.request({
    path,
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  })
  const text = await response.body.text()
  if (response.statusCode >= 300) throw new Error(`bench: ${method} ${path} answered ${response.statusCode}: ${text}`)
  return JSON.parse(text)
}

const waitUntil = async (what: string, condition: () => Promise<boolean>, timeoutMs = 900_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`)
    await sleep(100)
  }
}

interface ReadStats {
  latencies: number[]
  errors: string[]
  regressions: number
}

// READERS closed-loop clients fetching random documents until stopped; a failed or empty read, or a
// document older than one this reader saw before, is counted.
const startReaders = (pool: Pool): { stop: () => Promise<ReadStats> } => {
  const stats: ReadStats = { latencies: [], errors: [], regressions: 0 }
  let running = true
  const seen = new Map<string, number>()
  const reader = async (): Promise<void> => {
    while (running) {
      const id = `order-${Math.floor(Math.random() * STREAMS)}`
      const started = performance.now()
      try {
        const response = await pool.request({ path: `/projections/orders/documents/${id}`, method: 'GET' })
        const body = (await response.body.json()) as { version?: number; document?: { events?: number } }
        stats.latencies.push(performance.now() - started)
        if (response.statusCode !== 200 || body.document?.events !== EVENTS_PER_STREAM) stats.errors.push(`${response.statusCode} ${JSON.stringify(body).slice(0, 80)}`)
        if ((body.version ?? 0) < (seen.get(id) ?? 0)) stats.regressions++
        seen.set(id, body.version ?? 0)
      } catch (error) {
        stats.errors.push((error as Error).message)
      }
    }
  }
  const readers = Array.from({ length: READERS }, reader)
  return {
    stop: async () => {
      running = false
      await Promise.all(readers)
      stats.latencies.sort((a, b) => a - b)
      return stats
    },
  }
}

const describeReads = (stats: ReadStats): string =>
  `p50 ${ms(percentile(stats.latencies, 0.5))}, p99 ${ms(percentile(stats.latencies, 0.99))} over ${num(stats.latencies.length)} reads; ` +
  `${stats.errors.length} failed or wrong${stats.errors.length ? ` (${stats.errors.slice(0, 3).join('; ')})` : ''}, ${stats.regressions} went back`

// server and backend CPU per event: comparable across runs on a loaded machine, unlike events/s
const cpuPerEvent = (cpu: CpuShare | undefined, seconds: number, events: number): string =>
  cpu
    ? `per event: server ${((cpu.serverPercent / 100) * seconds * 1e6 / events).toFixed(1)} µs, its backends ${((cpu.backendsPercent / 100) * seconds * 1e6 / events).toFixed(1)} µs of CPU`
    : 'per event: n/a'

// the server's event-loop delay since the last scrape (prom-client resets it at each one; 10 ms resolution)
const loopDelay = async (pool: Pool): Promise<string> => {
  const text = await (await pool.request({ path: '/metrics', method: 'GET' })).body.text()
  const metric = (name: string): number => Number(text.split('\n').find((line) => line.startsWith(`${name} `))?.slice(name.length + 1)) * 1000
  return `event loop delay p99 ${ms(metric('annalist_nodejs_eventloop_lag_p99_seconds'))}, max ${ms(metric('annalist_nodejs_eventloop_lag_max_seconds'))}`
}

const rawReference = async (server: BenchServer): Promise<number> => {
  const sql = connect(server.databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  const started = performance.now()
  await sql`
    create temporary table raw_orders as
    select stream_id as id,
           jsonb_build_object('status', 'placed', 'total', (array_agg(data order by global_position desc))[1]::jsonb -> 'total',
                              'customerId', (array_agg(data order by global_position desc))[1]::jsonb -> 'customerId',
                              'events', count(*)) as document,
           max(global_position) as version
      from events
     where category = 'order'
     group by stream_id`
  const seconds = (performance.now() - started) / 1000
  await sql.end({ timeout: 5 })
  return seconds
}

await withBenchServer(settings, 3600, async (server) => {
  say(`server: ${server.describe}`)
  const pool = new Pool(server.origin, { connections: 8 })
  const readPool = new Pool(server.origin, { connections: READERS })
  try {
    process.stderr.write(`bench: seeding ${num(EVENTS)} events\n`)
    await seedOrders(server, data, EVENTS, EVENTS_PER_STREAM)
    process.stderr.write('bench: building the live projection\n')
    // the live worker's catch-up over the same events: the engine's speed without the backfill around it
    const stopLiveMeter = await server.meter()
    const liveStarted = performance.now()
    await request(pool, 'PUT', '/projections/orders', ORDER_DEFINITION)
    await waitUntil('the live projection', async () => {
      const view = await request(pool, 'GET', '/projections/orders')
      return view.head >= EVENTS && view.lag === 0 && view.status === 'running'
    })
    const liveSeconds = (performance.now() - liveStarted) / 1000
    const liveUsage = await stopLiveMeter()
    say(`\nlive catch-up of the same projection (reference, no readers): ${num(EVENTS / liveSeconds)} events/s, ${liveSeconds.toFixed(1)} s; ${cpuPerEvent(liveUsage.cpu, liveSeconds, EVENTS)}`)
    say(`  ${describeCpu(liveUsage.cpu)}`)

    say(`\natomic rebuild of a declarative projection (set 3 fields + inc, one document per stream): ${num(EVENTS)} events, ${num(STREAMS)} streams of ${EVENTS_PER_STREAM}, ${payload.dataBytes} B data + ${payload.metadataBytes} B metadata; ${READERS} readers fetching random documents throughout`)
    const idleReaders = startReaders(readPool)
    await sleep(IDLE_SECONDS * 1000)
    const idle = await idleReaders.stop()
    const idleP99 = percentile(idle.latencies, 0.99)
    say(`  reads, idle      ${describeReads(idle)}`)

    for (const run of CONCURRENCY.flatMap((maxConcurrency) => BATCH_SIZES.map((batchSize) => ({ maxConcurrency, batchSize })))) {
      const { maxConcurrency, batchSize } = run
      await loopDelay(pool)
      const readers = startReaders(readPool)
      const stopMeter = await server.meter()
      const started = performance.now()
      const backfill = await request(pool, 'POST', '/projections/orders/backfills', { criteria: 'full-rebuild', maxConcurrency, ...(batchSize ? { batchSize } : {}) })
      let view: any
      await waitUntil(`backfill ${backfill.id}`, async () => {
        view = await request(pool, 'GET', `/projections/orders/backfills/${backfill.id}`)
        if (view.status === 'failed' || view.status === 'cancelled') throw new Error(`bench: backfill ${view.status}: ${view.error}`)
        return view.status === 'completed'
      })
      const seconds = (performance.now() - started) / 1000
      const usage = await stopMeter()
      const during = await readers.stop()
      const loop = await loopDelay(pool)
      const p99 = percentile(during.latencies, 0.99)
      say(`  maxConcurrency ${maxConcurrency}${batchSize ? `, batchSize ${batchSize}` : ''}: ${num(view.processed / seconds)} events/s, ${num(view.processed)} events in ${seconds.toFixed(1)} s from the POST to the swap (the run reports ${num(view.eventsPerSecond)} events/s)`)
      say(`    reads during   ${describeReads(during)}; server ${loop}`)
      say(`    ${describeCpu(usage.cpu)}; ${cpuPerEvent(usage.cpu, seconds, view.processed)}`)
      say(`    target         1M events in < ${TARGETS.seconds} s: ${verdict(seconds * (1_000_000 / EVENTS) < TARGETS.seconds)}; read p99 ${ms(p99)} <= ${TARGETS.readP99Ratio}x idle (${ms(idleP99 * TARGETS.readP99Ratio)}): ${verdict(p99 <= idleP99 * TARGETS.readP99Ratio)}`)
    }

    const rawSeconds = await rawReference(server)
    say(`  raw Postgres     the same documents by one GROUP BY into a table: ${num(EVENTS / rawSeconds)} events/s (${rawSeconds.toFixed(1)} s), no readers, no checkpoints, not incremental`)
  } finally {
    await pool.close()
    await readPool.close()
  }
}, serverRoot)
