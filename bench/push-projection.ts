import { Pool } from 'undici'
import { connect, type Sql } from '../src/db/connect.js'
import { withBenchServer, type BenchServer } from './bench-server.js'
import { percentile } from './load.js'
import { attempt, describeCpu, ms, num, say, verdict } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npm run bench:push`: a declarative projection that pushes every event onto one array of one document
// (`push: {skus: "$.data.sku"}` on one stream), caught up over BENCH_PUSH_EVENTS (20,000) pre-appended
// events. Prints the cost per event of each 2,000-event slice as the document grows (it should stay flat),
// the server's event-loop delay during the catch-up (its /metrics, reset by the scrape before it), and the
// latency of GET /health/live probed meanwhile. Runs on a database of its own (annalist_bench_push).
const TARGETS = { lastToFirst: 1.5, loopP99Ms: 20 }
const EVENTS = Number(process.env.BENCH_PUSH_EVENTS ?? 20_000)
const SLICE = 2_000
const NAME = 'skus'
const DEFINITION = { source: { categories: ['order'] }, documentId: '$.streamId', handlers: { ItemAdded: { push: { skus: '$.data.sku' } } } }

const settings = { ...attempt(loadBenchSettings), database: 'annalist_bench_push' }

// One stream, `order-1`, straight into the database through append_events, 1,000 events a call.
const seed = async (server: BenchServer): Promise<void> => {
  const sql = connect(server.databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  for (let first = 0; first < EVENTS; first += 1000) {
    const events = Array.from({ length: Math.min(1000, EVENTS - first) }, (_, i) => ({ type: 'ItemAdded', data: { sku: `sku-${String(first + i).padStart(6, '0')}` } }))
    await sql`select count(*) from append_events('default', 'order-1', 'any', null, ${JSON.stringify(events)}::text::json)`
  }
  await sql`vacuum analyze events`
  await sql.end({ timeout: 5 })
}

const metric = (text: string, name: string): number => {
  const line = text.split('\n').find((candidate) => candidate.startsWith(name + ' '))
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1)) * 1000
}

const scrape = async (pool: Pool): Promise<string> => (await pool.request({ path: '/metrics', method: 'GET' })).body.text()

// the time the checkpoint first reached each slice boundary, polled every 2 ms on a connection of its own
const watchCheckpoint = (sql: Sql, started: number) => {
  const reached: number[] = []
  const done = (async () => {
    for (let slice = 1; slice <= EVENTS / SLICE; ) {
      const [row] = await sql<{ position: number }[]>`select position from projection_generations where projection = ${NAME}`
      const position = row?.position ?? 0
      while (slice <= EVENTS / SLICE && position >= slice * SLICE) reached[slice++] = performance.now() - started
      if (performance.now() - started > 900_000) throw new Error('bench: the projection did not catch up within 900 s')
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  })()
  return { reached, done }
}

// GET /health/live one after another until `until` settles: what any other client waits meanwhile
const probeLiveness = async (pool: Pool, until: Promise<unknown>): Promise<number[]> => {
  const latencies: number[] = []
  let finished = false
  void until.finally(() => (finished = true))
  while (!finished) {
    const sent = performance.now()
    await (await pool.request({ path: '/health/live', method: 'GET' })).body.dump()
    latencies.push(performance.now() - sent)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return latencies.sort((a, b) => a - b)
}

await withBenchServer(settings, 1200, async (server) => {
  say(`server: ${server.describe}`)
  say(`\npush projection: ${num(EVENTS)} ItemAdded events on one stream, one document, push {skus: "$.data.sku"}; catch-up from 0`)
  process.stderr.write('bench: seeding\n')
  await seed(server)
  const pool = new Pool(server.origin, { connections: 4 })
  const watcher = connect(server.databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  try {
    await scrape(pool)
    const stopMeter = await server.meter()
    const started = performance.now()
    const put = await pool.request({ path: `/projections/${NAME}`, method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(DEFINITION) })
    if (put.statusCode !== 201) throw new Error(`bench: PUT /projections/${NAME} answered ${put.statusCode}: ${await put.body.text()}`)
    await put.body.dump()
    const { reached, done } = watchCheckpoint(watcher, started)
    const live = await probeLiveness(pool, done)
    await done
    const metrics = await scrape(pool)
    const usage = await stopMeter()
    const seconds = reached.at(-1)! / 1000
    const perEvent = reached.slice(1).map((at, index) => ((at - (reached[index] ?? 0)) * 1000) / SLICE)
    say(`  per event    ${perEvent.map((us) => `${num(us)}`).join(' → ')} µs, slice by slice of ${num(SLICE)} events (the first includes the worker's start)`)
    const first = perEvent[0] ?? Number.NaN
    const last = perEvent.at(-1) ?? Number.NaN
    say(`  flat?        the last ${num(SLICE)} events ${num(last)} µs each against the first ${num(first)} µs: ${(last / first).toFixed(2)}x; target <= ${TARGETS.lastToFirst}x: ${verdict(last / first <= TARGETS.lastToFirst)}`)
    say(`  catch-up     ${num(EVENTS)} events in ${seconds.toFixed(2)} s = ${num(EVENTS / seconds)} events/s, batches of 1,000, one worker`)
    const p99 = metric(metrics, 'annalist_nodejs_eventloop_lag_p99_seconds')
    say(`  event loop   server's delay during the catch-up: p50 ${ms(metric(metrics, 'annalist_nodejs_eventloop_lag_p50_seconds'))}, p99 ${ms(p99)}, max ${ms(metric(metrics, 'annalist_nodejs_eventloop_lag_max_seconds'))} (monitorEventLoopDelay, 10 ms resolution); target p99 <= ${TARGETS.loopP99Ms} ms: ${verdict(p99 <= TARGETS.loopP99Ms)}`)
    say(`  /health/live meanwhile p50 ${ms(percentile(live, 0.5))}, p99 ${ms(percentile(live, 0.99))}, max ${ms(live.at(-1) ?? Number.NaN)} over ${num(live.length)} probes, one at a time 10 ms apart`)
    say(`    ${describeCpu(usage.cpu)}`)
  } finally {
    await watcher.end({ timeout: 5 })
    await pool.close()
  }
})
