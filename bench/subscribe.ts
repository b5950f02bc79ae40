import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { connect } from '../src/db/connect.js'
import { withBenchServer, type BenchServer } from './bench-server.js'
import { serverRssMiB } from './cpu-meter.js'
import { liveLoads, loadAverage, openLoop, reportLags, type LiveLoad } from './live-rates.js'
import { loadPayload } from './payload.js'
import { openSubscriber } from './sse-subscriber.js'
import { attempt, describeCpu, ms, num, say, verdict } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npm run bench:subscribe`: GET /subscribe (SSE).
// [0] the maximum single-append rate (bench/live-rates.ts; BENCH_MAX_RATE skips it, BENCH_LIVE_RATE runs one fixed rate);
// [1] delivery latency, append acknowledged → event received on every subscriber, at 50% and 80% of it, single-event
//     appends for BENCH_SECONDS (15), with 1 and 100 subscribers (BENCH_SUBSCRIBERS="1,100");
// [2] replay rate of BENCH_REPLAY_EVENTS (1,000,000) pre-appended events over one SSE connection, with the
//     server's RSS at the start, middle and end. Runs on a database of its own (annalist_bench_subscribe).
const TARGETS = { replayPerSecond: 50_000 }
const SUBSCRIBERS = (process.env.BENCH_SUBSCRIBERS ?? '1,100').split(',').map(Number).filter((count) => count > 0)
const REPLAY_EVENTS = Number(process.env.BENCH_REPLAY_EVENTS ?? 1_000_000)
const SEED_STREAMS_PER_CALL = 100
const EVENTS_PER_STREAM = 10

const settings = { ...attempt(loadBenchSettings), database: process.env.BENCH_DATABASE_NAME || 'annalist_bench_subscribe' }
const payload = attempt(() => loadPayload(settings.anchorsDir))
// streams the server ended before the bench closed them (a subscriber that does not reconnect misses the rest)
let endedByServer = 0

const append = async (pool: Pool, streamId: string): Promise<number> => {
  const response = await pool.request({ path: `/streams/${streamId}/events`, method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"events":[${payload.eventJson}]}` })
  const body = (await response.body.json()) as { lastPosition: number }
  if (response.statusCode !== 201) throw new Error(`append answered ${response.statusCode}`)
  return body.lastPosition
}

const latency = async (server: BenchServer, pool: Pool, subscribers: number, load: LiveLoad): Promise<number> => {
  const RATE = load.rate
  say(`\n[1] delivery latency with ${subscribers} subscriber(s) at ${load.label}: single-event appends for ${settings.seconds} s after ${settings.warmupSeconds} s of warm-up; append acknowledged → event received`)
  const acked = new Map<number, number>()
  const received = new Map<number, number[]>()
  // what each subscriber got, in arrival order: a gap, a repeat and a late arrival are told apart
  const seen = Array.from({ length: subscribers }, () => [] as number[])
  const closers = await Promise.all(
    seen.map((positions) =>
      openSubscriber(server.origin, `/subscribe?category=live${subscribers}`, (position, at) => {
        positions.push(position)
        const list = received.get(position)
        if (list) list.push(at)
        else received.set(position, [at])
      }, () => endedByServer++),
    ),
  )
  // every subscriber is live once a probe event reached all of them
  const probe = await append(pool, `live${subscribers}-probe`)
  for (let polls = 0; (received.get(probe)?.length ?? 0) < subscribers && polls < 2000; polls++) await sleep(5)
  let errors = 0
  endedByServer = 0
  // open loop: append i goes out at started + i/RATE s, whatever the previous ones are doing
  const drive = (seconds: number, record: boolean) =>
    openLoop(RATE, seconds, (i) =>
      append(pool, `live${subscribers}-${i % 500}`).then((position) => void (record && acked.set(position, performance.now())), () => void (record && errors++)))
  await drive(settings.warmupSeconds, false)
  const stopMeter = await server.meter()
  const { achieved } = await drive(settings.seconds, true)
  const last = Math.max(...acked.keys())
  const reachedLast = (): boolean => seen.every((positions) => (positions.at(-1) ?? 0) >= last)
  const waitStarted = performance.now()
  while (!reachedLast() && performance.now() - waitStarted < 10_000) await sleep(5)
  const usage = await stopMeter()
  await Promise.all(closers.map((close) => close()))
  const latencies: number[] = []
  let early = 0
  for (const [position, at] of acked) {
    for (const arrival of received.get(position) ?? []) {
      // the event can reach a subscriber before the bench has read the append's answer
      if (arrival < at) early++
      latencies.push(Math.max(0, arrival - at))
    }
  }
  // per subscriber: a gap is an acknowledged position it lacks below the highest one it got (a skip); late ones
  // lie above it (not there yet when the 10 s wait ended); a repeat is any position not above the one before it
  let gaps = 0
  let late = 0
  let repeats = 0
  const unseen = new Set<number>()
  for (const positions of seen) {
    const highest = positions.at(-1) ?? 0
    const have = new Set(positions)
    repeats += positions.filter((position, index) => index > 0 && position <= positions[index - 1]!).length
    for (const position of acked.keys()) {
      if (have.has(position)) continue
      unseen.add(position)
      if (position < highest) gaps++
      else late++
    }
  }
  const missing = gaps + late
  const { p99 } = reportLags(latencies, load, missing === 0 && repeats === 0 && errors === 0)
  say(`    deliveries   ${num(latencies.length)} (${num(acked.size)} appends × ${subscribers})`)
  say(`    conditions   open loop, ${num(achieved)} appends/s sent over 500 streams, up to 64 connections; ${num(early)} deliveries arrived before the ack was read (counted as 0); ${errors} append errors`)
  say(`    exactness    ${gaps} skipped (missing below a later delivery), ${late} late (missing above each subscriber's last delivery when the wait ended), ${repeats} repeated; ${endedByServer} streams ended by the server`)
  if (unseen.size > 0) say(`    not received by every subscriber: positions ${[...unseen].sort((a, b) => a - b).slice(0, 20).join(', ')} (last acknowledged ${last}, highest received ${Math.max(...received.keys())})`)
  say(`    ${describeCpu(usage.cpu)}; load average ${loadAverage()}`)
  return p99
}

// Straight into the database through append_events, so the seed is quick.
const seed = async (server: BenchServer): Promise<number> => {
  const sql = connect(server.databaseUrl, { max: 2, applicationName: 'annalist-bench' })
  const events = `[${new Array(EVENTS_PER_STREAM).fill(payload.eventJson).join(',')}]`
  const streams = REPLAY_EVENTS / EVENTS_PER_STREAM
  for (let first = 0; first < streams; first += SEED_STREAMS_PER_CALL) {
    await sql`
      select count(*)
        from generate_series(${first}::int, ${Math.min(first + SEED_STREAMS_PER_CALL, streams) - 1}::int) as s
        cross join lateral append_events('default', 'replay-' || s, 'any', null, ${events}::text::json)`
  }
  // a store replays old, settled rows: set their hint bits and visibility now, not during the measured read
  await sql`vacuum analyze events`
  const [row] = await sql<{ last: number }[]>`select max(global_position) as last from events where category = 'replay'`
  await sql.end({ timeout: 5 })
  return row!.last
}

const replay = async (server: BenchServer): Promise<number> => {
  say(`\n[2] replay: ${num(REPLAY_EVENTS)} pre-appended events over one SSE connection (GET /subscribe?category=replay)`)
  process.stderr.write('bench: seeding\n')
  const last = await seed(server)
  const rss: string[] = [`start ${num(serverRssMiB(server.pid) ?? Number.NaN)} MiB`]
  let count = 0
  let done: () => void = () => undefined
  const finished = new Promise<void>((resolve) => (done = resolve))
  const stopMeter = await server.meter()
  const started = performance.now()
  const close = await openSubscriber(server.origin, '/subscribe?category=replay', (position) => {
    count++
    if (count === Math.floor(REPLAY_EVENTS / 2)) rss.push(`middle ${num(serverRssMiB(server.pid) ?? Number.NaN)} MiB`)
    if (position === last) done()
  })
  await finished
  const seconds = (performance.now() - started) / 1000
  rss.push(`end ${num(serverRssMiB(server.pid) ?? Number.NaN)} MiB`)
  const usage = await stopMeter()
  await close()
  const perSecond = count / seconds
  say(`  ours         ${num(perSecond)} events/s (${num(count)} events in ${seconds.toFixed(2)} s)`)
  say(`    server RSS   ${rss.join(', ')}`)
  say(`    ${describeCpu(usage.cpu)}`)
  say(`    target       >= ${num(TARGETS.replayPerSecond)} events/s: ${verdict(perSecond >= TARGETS.replayPerSecond && count === REPLAY_EVENTS)}`)
  return perSecond
}

await withBenchServer(settings, 900 + (settings.seconds + settings.warmupSeconds) * (SUBSCRIBERS.length * 2 + 1) * 2, async (server) => {
  say(`server: ${server.describe}`)
  const pool = new Pool(server.origin, { connections: 64 })
  try {
    const loads = await liveLoads(server, payload, settings)
    for (const subscribers of SUBSCRIBERS) for (const load of loads) await latency(server, pool, subscribers, load)
    if (REPLAY_EVENTS > 0) await replay(server)
  } finally {
    await pool.close()
  }
})
