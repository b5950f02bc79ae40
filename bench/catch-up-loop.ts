import { loadavg } from 'node:os'
import { connect, withDatabase } from '../src/db/connect.js'
import { migrate } from '../src/db/migrate.js'
import { applyBatch, type BatchTarget } from '../src/projections/engine/apply-batch.js'
import { SourceReader } from '../src/projections/engine/source-events.js'
import { ORDER_DEFINITION } from './orders.js'
import { loadPayload } from './payload.js'
import { attempt, num, say } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npx tsx bench/catch-up-loop.ts`: a projection worker's batch loop alone, in this process, without HTTP or the
// worker's scheduling: read (with the next batch read ahead) and applyBatch over BENCH_PROJECTION_EVENTS (50,000)
// events of bench:projections' declarative definition, CATCH_UP_ROUNDS (5) times, each on emptied documents. It
// prints the wall time and this process's CPU per event (what the server spends on a batch), medians at the end.
const EVENTS = Number(process.env.BENCH_PROJECTION_EVENTS ?? 50_000)
const ROUNDS = Number(process.env.CATCH_UP_ROUNDS ?? 5)
const EVENTS_PER_STREAM = 10
const settings = { ...attempt(loadBenchSettings), database: 'annalist_bench_catch_up_loop' }
const payload = attempt(() => loadPayload(settings.anchorsDir))

const admin = connect(settings.adminUrl, { max: 1, applicationName: 'annalist-bench' })
await admin`drop database if exists ${admin(settings.database)} with (force)`
await admin`create database ${admin(settings.database)}`
const sql = connect(withDatabase(settings.adminUrl, settings.database), { max: 4, applicationName: 'annalist-bench' })
try {
  await migrate(sql)
  const run = `[${new Array(EVENTS_PER_STREAM).fill(payload.eventJson).join(',')}]`
  for (let first = 0; first < EVENTS / EVENTS_PER_STREAM; first += 100) {
    await sql`
      select count(*)
        from generate_series(${first}::int, ${Math.min(first + 100, EVENTS / EVENTS_PER_STREAM) - 1}::int) as s
        cross join lateral append_events('default', 'order-' || s, 'any', null, ${run}::text::json)`
  }
  await sql`vacuum analyze events`
  const [{ head } = { head: 0 }] = await sql<{ head: number }[]>`select max(global_position)::int as head from events`
  const projector = { kind: 'declarative', definition: ORDER_DEFINITION } as BatchTarget['projector']
  const target: BatchTarget = { projection: 'loop', generation: 1, projector, upcast: (event) => event, documents: 'exclusive', onFailure: 'commit-before', advance: async () => true }
  const options = { limit: 1000, maxBytes: 16 * 1024 * 1024, exact: true }
  const walls: number[] = []
  const cpus: number[] = []
  say(`catch-up loop: ${num(EVENTS)} events, ${num(EVENTS / EVENTS_PER_STREAM)} documents, batches of ${options.limit}; load average ${loadavg().map((load) => load.toFixed(1)).join(' ')}`)
  for (let round = 0; round < ROUNDS; round++) {
    await sql`truncate projection_documents`
    const reader = new SourceReader(sql)
    const cpu = process.cpuUsage()
    const started = performance.now()
    for (let position = 0; position < head; ) {
      const batch = await reader.read(ORDER_DEFINITION.source, position, head, options)
      position = (await applyBatch(sql, target, { events: batch.events, from: position, readTo: batch.readTo })).position
    }
    const wall = performance.now() - started
    const used = process.cpuUsage(cpu)
    const [{ documents, applied } = { documents: 0, applied: 0 }] = await sql<{ documents: number; applied: number }[]>`
      select count(*)::int as documents, sum((document ->> 'events')::int)::int as applied from projection_documents`
    if (documents !== EVENTS / EVENTS_PER_STREAM || applied !== EVENTS) throw new Error(`bench: ${documents} documents counted ${applied} events`)
    walls.push(wall)
    cpus.push((used.user + used.system) / EVENTS)
    say(`  round ${round + 1}: ${num(EVENTS / (wall / 1000))} events/s, ${(cpus.at(-1)!).toFixed(1)} µs of this process's CPU per event`)
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  say(`  median: ${num(EVENTS / (median(walls) / 1000))} events/s, ${median(cpus).toFixed(1)} µs of CPU per event`)
} finally {
  await sql.end({ timeout: 5 })
  await admin`drop database if exists ${admin(settings.database)} with (force)`
  await admin.end({ timeout: 5 })
}
