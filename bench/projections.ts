import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { withBenchServer, type BenchServer } from './bench-server.js'
import { percentile } from './load.js'
import { ORDER_DEFINITION, seedOrders } from './orders.js'
import { loadPayload } from './payload.js'
import { attempt, describeCpu, ms, num, say, verdict } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npm run bench:projections`: catch-up rate of a declarative projection over pre-appended events, and
// live lag from an append's acknowledgement to its document being readable, at a steady append rate.
// BENCH_PROJECTION_EVENTS (200000), BENCH_LIVE_RATE (1000/s), BENCH_SECONDS (15), plus bench/README.md's settings.
// issue 12: declarative catch-up at 40,000 events/s or more
const TARGETS = { catchUpPerSecond: 40_000, liveP99Ms: 20 }
const EVENTS = Number(process.env.BENCH_PROJECTION_EVENTS ?? 200_000)
const RATE = Number(process.env.BENCH_LIVE_RATE ?? 1000)
const EVENTS_PER_STREAM = 10

// a database of its own, so other benchmarks running beside it are not dropped under it
const settings = { ...attempt(loadBenchSettings), database: 'annalist_bench_projections' }
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

// Open loop: append i goes out at started + i/RATE s, whatever the previous ones are doing.
const liveLag = async (server: BenchServer, pool: Pool, readers: Pool): Promise<number> => {
  say(`\n[2] live lag: ${num(RATE)} single-event appends/s for ${settings.seconds} s; per append, ack → GET …/documents/{id}?waitFor=<position> answered`)
  await put(pool, 'live')
  for (let polls = 0; polls < 60_000; polls++) {
    const view = await status(pool, 'live')
    if (view.lag === 0) break
    await sleep(50)
  }
  const lags: number[] = []
  let errors = 0
  const kinds = new Map<string, number>()
  const tally = (kind: string): void => {
    errors++
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
  }
  const total = Math.round(RATE * settings.seconds)
  const stopMeter = await server.meter()
  const started = performance.now()
  const inflight: Promise<void>[] = []
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    inflight.push(
      (async () => {
        const streamId = `order-live-${i % 500}`
        const appended = await pool.request({ path: `/streams/${streamId}/events`, method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"events":[${payload.eventJson}]}` })
        const ack = (await appended.body.json()) as { lastPosition: number }
        const acked = performance.now()
        const read = await readers.request({ path: `/projections/live/documents/${streamId}?waitFor=${ack.lastPosition}&timeoutMs=5000`, method: 'GET' })
        await read.body.dump()
        if (read.statusCode !== 200) tally(`GET ${read.statusCode}`)
        else lags.push(performance.now() - acked)
      })().catch((error: Error & { code?: string }) => tally(error.code ?? error.message)),
    )
  }
  await Promise.all(inflight)
  const usage = await stopMeter()
  lags.sort((a, b) => a - b)
  const p99 = percentile(lags, 0.99)
  say(`  ours         p50 ${ms(percentile(lags, 0.5))}, p99 ${ms(p99)}, max ${ms(lags.at(-1) ?? Number.NaN)} over ${num(lags.length)} appends; ${errors} errors ${JSON.stringify(Object.fromEntries(kinds))}`)
  say(`    conditions   open loop at ${num(RATE)}/s over 500 streams, 32 append connections and 128 for the reads; the lag includes the document GET's round trip`)
  say(`    ${describeCpu(usage.cpu)}`)
  say(`    target       p99 <= ${TARGETS.liveP99Ms} ms: ${verdict(p99 <= TARGETS.liveP99Ms)}`)
  return p99
}

await withBenchServer(settings, 600 + settings.seconds * 2, async (server) => {
  say(`server: ${server.describe}`)
  // appends and the waiting document reads on separate connections, so a slow read never delays an append
  const pool = new Pool(server.origin, { connections: 32 })
  const readers = new Pool(server.origin, { connections: 128 })
  try {
    await catchUp(server, pool)
    await liveLag(server, pool, readers)
  } finally {
    await pool.close()
    await readers.close()
  }
})
