import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { withBenchServer, type BenchServer } from './bench-server.js'
import { connect } from '../src/db/connect.js'
import { liveLoads, loadAverage, openLoop, reportLags, type LiveLoad } from './live-rates.js'
import { ORDER_DEFINITION, seedOrders } from './orders.js'
import { loadPayload } from './payload.js'
import { attempt, describeCpu, describeDb, ms, num, say, verdict } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npm run bench:projections`: catch-up rate of a declarative projection over pre-appended events, and
// live lag from an append's acknowledgement to its document being readable, at steady append rates: 50% and 80%
// of the maximum single-append rate measured first on the same server (bench/live-rates.ts).
// BENCH_PROJECTION_EVENTS (200000), BENCH_MAX_RATE (measured), BENCH_LIVE_RATE (one fixed rate instead),
// BENCH_SECONDS (15), plus bench/README.md's settings.
// issue 12: declarative catch-up at 40,000 events/s or more
const TARGETS = { catchUpPerSecond: 40_000 }
const EVENTS = Number(process.env.BENCH_PROJECTION_EVENTS ?? 200_000)
const LIVE_STREAMS = 500
const EVENTS_PER_STREAM = 10

// a database of its own, so other benchmarks running beside it are not dropped under it
const settings = { ...attempt(loadBenchSettings), database: process.env.BENCH_DATABASE_NAME || 'annalist_bench_projections' }
const payload = attempt(() => loadPayload(settings.anchorsDir))
const data = JSON.parse(payload.eventJson) as { data: unknown; metadata: unknown }

const status = async (pool: Pool, name: string): Promise<{ position: number; head: number; lag: number; documents: number }> => {
  const response = await pool.request({ path: `/projections/${name}`, method: 'GET' })
  return (await response.body.json()) as never
}

const put = async (pool: Pool, name: string): Promise<void> => {
  const response = await pool.request({ path: `/projections/${name}`, method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ORDER_DEFINITION) })
  if (response.statusCode !== 201) throw new Error(`bench: PUT /projections/${name} answered ${response.statusCode}: ${await response.body.text()}`)
  await response.body.dump()
}

const catchUp = async (server: BenchServer, pool: Pool): Promise<number> => {
  say(`\n[1] catch-up: a declarative projection (set 3 fields + inc, one document per stream) over ${num(EVENTS)} pre-appended events`)
  process.stderr.write('bench: seeding\n')
  await seedOrders(server, data, EVENTS, EVENTS_PER_STREAM)
  const stopMeter = await server.meter()
  const started = performance.now()
  await put(pool, 'catchup')
  for (let polls = 0; polls < 60_000; polls++) {
    const view = await status(pool, 'catchup')
    if (view.position >= view.head && view.head >= EVENTS) break
    await sleep(50)
  }
  const seconds = (performance.now() - started) / 1000
  const usage = await stopMeter()
  const perSecond = EVENTS / seconds
  say(`  ours         ${num(perSecond)} events/s (${num(EVENTS)} events in ${seconds.toFixed(2)} s, batches of 1000, one worker)`)
  say(`    ${describeCpu(usage.cpu)}`)
  say(`    target       >= ${num(TARGETS.catchUpPerSecond)} events/s: ${verdict(perSecond >= TARGETS.catchUpPerSecond)}`)
  return perSecond
}

// The probes of live lag: every LAG_SAMPLE-th append reads its document with waitFor. A read per append would add
// as many requests as the appends themselves, so "50% of the maximum" would ask for about what the maximum did.
const LAG_SAMPLE = Math.max(1, Number(process.env.BENCH_LAG_SAMPLE ?? 10))
const probeWords = (): string => (LAG_SAMPLE === 1 ? 'per append' : `every ${LAG_SAMPLE}th append (BENCH_LAG_SAMPLE)`)

const caughtUp = async (pool: Pool, name: string): Promise<void> => {
  for (let polls = 0; polls < 60_000; polls++) {
    const view = await status(pool, name)
    if (view.lag === 0) return
    await sleep(50)
  }
}

// Per probe, ack → GET …/documents/{id}?waitFor=<position> answered, at each load after a warm-up at the same rate.
const liveLag = async (server: BenchServer, pool: Pool, readers: Pool, loads: LiveLoad[]): Promise<void> => {
  await put(pool, 'live')
  await caughtUp(pool, 'live')
  let acked = 0
  for (const [index, load] of loads.entries()) {
    say(`\n[2${'abcdefgh'[index]}] live lag at ${load.label}: single-event appends for ${settings.seconds} s after ${settings.warmupSeconds} s; ${probeWords()}, ack → GET …/documents/{id}?waitFor=<position> answered`)
    const lags: number[] = []
    let errors = 0
    const kinds = new Map<string, number>()
    const tally = (kind: string): void => {
      errors++
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
    }
    const drive = (seconds: number, record: boolean) =>
      openLoop(load.rate, seconds, async (i) => {
        try {
          const streamId = `order-live-${i % LIVE_STREAMS}`
          const appended = await pool.request({ path: `/streams/${streamId}/events`, method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"events":[${payload.eventJson}]}` })
          const ack = (await appended.body.json()) as { lastPosition: number }
          if (appended.statusCode !== 201) return tally(`POST ${appended.statusCode}`)
          acked++
          if (i % LAG_SAMPLE !== 0) return
          const at = performance.now()
          const read = await readers.request({ path: `/projections/live/documents/${streamId}?waitFor=${ack.lastPosition}&timeoutMs=5000`, method: 'GET' })
          await read.body.dump()
          if (read.statusCode !== 200) tally(`GET ${read.statusCode}`)
          else if (record) lags.push(performance.now() - at)
        } catch (error) {
          tally((error as Error & { code?: string }).code ?? (error as Error).message)
        }
      })
    await drive(settings.warmupSeconds, false)
    const stopMeter = await server.meter()
    const { achieved } = await drive(settings.seconds, true)
    const usage = await stopMeter()
    reportLags(lags, load, errors === 0)
    await caughtUp(pool, 'live')
    say(`    conditions   open loop, ${num(achieved)} appends/s sent over ${LIVE_STREAMS} streams, 32 append connections and 128 for the reads; the lag includes the document GET's round trip; ${errors} errors ${JSON.stringify(Object.fromEntries(kinds))}`)
    say(`    ${describeCpu(usage.cpu)}; load average ${loadAverage()}`)
    say(`    ${describeDb(usage, Math.round(achieved * settings.seconds)).replace('per request', 'per append')}`)
  }
  await nothingLost(server, acked)
}

// Every acknowledged append is stored once and the projection counted each once (the live generation caught up
// with the head after each load).
const nothingLost = async (server: BenchServer, acked: number): Promise<void> => {
  const sql = connect(server.databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  try {
    const [row] = await sql<{ stored: number; counted: number }[]>`
      select (select count(*) from events where category = 'order' and stream_id like 'order-live-%')::int as stored,
             (select coalesce(sum((d.document ->> 'events')::int), 0)
                from projection_documents d join projections p on p.name = d.projection and p.live_generation = d.generation
               where d.projection = 'live' and d.id like 'order-live-%')::int as counted`
    say(`\n  nothing lost  ${num(acked)} appends acknowledged, ${num(row!.stored)} stored, ${num(row!.counted)} counted by the projection: ${verdict(row!.stored === acked && row!.counted === acked)}`)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

// BENCH_SERVER_ROOT: another checkout's server (built there) under this bench, for old-against-new runs
await withBenchServer(settings, 900 + settings.seconds * 6, async (server) => {
  say(`server: ${server.describe}`)
  // appends and the waiting document reads on separate connections, so a slow read never delays an append
  const pool = new Pool(server.origin, { connections: 32 })
  const readers = new Pool(server.origin, { connections: 128 })
  try {
    const loads = await liveLoads(server, payload, settings)
    await catchUp(server, pool)
    await liveLag(server, pool, readers, loads)
  } finally {
    await pool.close()
    await readers.close()
  }
}, process.env.BENCH_SERVER_ROOT ? path.resolve(process.env.BENCH_SERVER_ROOT) : undefined)
