import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig } from '../src/config.js'
import { connect, withDatabase, type Sql } from '../src/db/connect.js'
import { migrate } from '../src/db/migrate.js'
import { appendEvents } from '../src/events/append.js'
import { onAppended } from '../src/events/appended.js'
import { defineProjection } from '../src/projections/management.js'
import { createServices } from '../src/services.js'
import { percentile } from './load.js'
import { ORDER_DEFINITION } from './orders.js'
import { attempt, say } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npx tsx bench/trace-lag.ts`: one event's path from its append's acknowledgement to a `waitFor` read released,
// with a timestamp at every step, for every append of a steady open-loop rate (BENCH_LIVE_RATE, 500/s, for
// BENCH_SECONDS). The services run in this process on a database of their own, their pool wrapped so that the
// head's observations, the worker's reads and the progress reads are timed; no HTTP, so what is left is the
// store's own path. Prints each step's p50/p99/max, in ms after the ack.
const RATE = Number(process.env.BENCH_LIVE_RATE ?? 500)
const settings = { ...attempt(loadBenchSettings), database: process.env.BENCH_DATABASE_NAME || 'annalist_bench_trace' }

interface Observation { start: number; end: number; last: number; fence: bigint; oldest: bigint }
const observations: Observation[] = []
// worker batches: the transaction's start and the checkpoint it committed
const batches: { start: number; end: number; position: number }[] = []
const begins: number[] = []
const progressReads: { start: number; end: number; position: number }[] = []
const advances: { at: number; head: number }[] = []
const signals: number[] = []

// Times the queries the path is made of: a tagged call whose text names one of them gets its start and end.
const traced = (sql: Sql): Sql =>
  new Proxy(sql, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown
      if (key !== 'begin' || typeof value !== 'function') return value
      return (...args: unknown[]) => {
        begins.push(performance.now())
        return (value as (...a: unknown[]) => unknown)(...args)
      }
    },
    apply(target, self, args: unknown[]) {
      const query = Reflect.apply(target, self, args) as Promise<unknown[]> & { then: Promise<unknown[]>['then'] }
      const strings = args[0] as TemplateStringsArray | undefined
      const text = Array.isArray(strings) && 'raw' in strings ? strings.join('?') : ''
      const kind = text.includes('observe_log_head') ? 'observe' : text.includes('live_generation') ? 'progress' : undefined
      if (!kind) return query
      const start = performance.now()
      const then = query.then.bind(query)
      query.then = ((resolve, reject) =>
        then((rows) => {
          const end = performance.now()
          const row = rows[0] as Record<string, string | number> | undefined
          if (kind === 'observe' && row) observations.push({ start, end, last: Number(row.lastPosition), fence: BigInt(row.fence!), oldest: BigInt(row.oldestRunning!) })
          if (kind === 'progress' && row) progressReads.push({ start, end, position: Number(row.position) })
          return (resolve ? resolve(rows) : rows) as never
        }, reject)) as typeof query.then
      return query
    },
  })

const admin = connect(settings.adminUrl, { max: 1 })
await admin`drop database if exists ${admin(settings.database)} with (force)`
await admin`create database ${admin(settings.database)}`
const pool = connect(withDatabase(settings.adminUrl, settings.database), { max: 20 })
await migrate(pool)
const sql = traced(pool)
const config = loadConfig({ DATABASE_URL: withDatabase(settings.adminUrl, settings.database) })
const log = { info: () => undefined, warn: (object: object, message: string) => console.error(message, object) }
const services = await createServices(sql, config, log)
// the runner calls its options' `committed` after every batch a worker committed, with the worker
;(services.runner as unknown as { options: { committed: (worker: { position: number }) => void } }).options.committed = (worker) =>
  batches.push({ start: begins.at(-1) ?? Number.NaN, end: performance.now(), position: worker.position })
await services.start()
onAppended(sql, () => signals.push(performance.now()))
services.logWatcher.on('advance', (head) => advances.push({ at: performance.now(), head }))
await defineProjection(sql, services.runner, 'live', ORDER_DEFINITION, await services.logHead.catchUp())
await services.runner.reconcile()

const event = { type: 'OrderPlaced', data: { total: 12.5, customerId: 'c-1' } }
interface Trace { ack: number; position: number; released: number }
const traces: Trace[] = []
const total = Math.round(RATE * settings.seconds)
const started = performance.now()
const inflight: Promise<void>[] = []
for (let i = 0; i < total; i++) {
  const wait = started + (i * 1000) / RATE - performance.now()
  if (wait > 1) await sleep(wait)
  inflight.push((async () => {
    const result = await appendEvents(sql, 'default', `order-${i % 500}`, { events: [event] })
    const ack = performance.now()
    const reached = await services.progress.waitFor('live', 'default', result.lastPosition, 5000)
    traces.push({ ack, position: result.lastPosition, released: reached ? performance.now() : Number.NaN })
  })())
}
await Promise.all(inflight)

// the first of each kind of step at or after the ack that covers the position
const firstAfter = <T>(list: T[], at: (item: T) => number, ok: (item: T) => boolean, from: number): number => {
  for (const item of list) if (at(item) >= from && ok(item)) return at(item)
  return Number.NaN
}
const steps: Record<string, number[]> = {
  'observation recording the position ends': [],
  'head advance covers it': [],
  'the worker batch covering it begins': [],
  'that batch commits': [],
  'progress read finds it': [],
  'waitFor released': [],
}
const columns = Object.values(steps)
for (const trace of traces) {
  const { ack, position } = trace
  const recorded = firstAfter(observations, (o) => o.end, (o) => o.last >= position, ack - 50)
  const advanced = firstAfter(advances, (a) => a.at, (a) => a.head >= position, ack - 50)
  const batch = batches.find((b) => b.position >= position && b.end >= ack - 50)
  const read = firstAfter(progressReads, (r) => r.end, (r) => r.position >= position, ack - 50)
  ;[recorded, advanced, batch?.start ?? Number.NaN, batch?.end ?? Number.NaN, read, trace.released].forEach((at, index) => columns[index]!.push(at - ack))
}
// the slowest few, step by step, with what the worker and the head did around them
const slowest = traces.filter((t) => !Number.isNaN(t.released)).sort((a, b) => (b.released - b.ack) - (a.released - a.ack)).slice(0, Number(process.env.TRACE_SLOWEST ?? 0))
for (const trace of slowest) {
  const near = (at: number): boolean => at >= trace.ack - 5 && at <= trace.released + 1
  say(`slow: position ${trace.position}, ${(trace.released - trace.ack).toFixed(1)} ms`)
  for (const o of observations.filter((o) => near(o.end))) say(`  +${(o.start - trace.ack).toFixed(1)}..${(o.end - trace.ack).toFixed(1)} observe last ${o.last} ${o.oldest < o.fence ? `waits (fence ${o.fence}, oldest ${o.oldest})` : 'clear'}`)
  for (const a of advances.filter((a) => near(a.at))) say(`  +${(a.at - trace.ack).toFixed(1)} advance ${a.head}`)
  for (const b of batches.filter((b) => near(b.end))) say(`  +${(b.start - trace.ack).toFixed(1)}..${(b.end - trace.ack).toFixed(1)} batch to ${b.position}`)
  for (const r of progressReads.filter((r) => near(r.end))) say(`  +${(r.start - trace.ack).toFixed(1)}..${(r.end - trace.ack).toFixed(1)} progress read ${r.position}`)
}
say(`trace: ${traces.length} appends at ${RATE}/s for ${settings.seconds} s; ms after the ack (negative: before the append's answer reached its caller)`)
for (const [name, values] of Object.entries(steps)) {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b)
  say(`  ${name.padEnd(44)} p50 ${percentile(sorted, 0.5).toFixed(1).padStart(7)}  p99 ${percentile(sorted, 0.99).toFixed(1).padStart(7)}  max ${(sorted.at(-1) ?? Number.NaN).toFixed(1).padStart(7)}  (${values.length - sorted.length} never)`)
}
const span = (performance.now() - started) / 1000
const waited = observations.filter((o) => o.oldest < o.fence).length
say(`  observations: ${observations.length} (${(observations.length / span).toFixed(0)}/s), ${waited} found older transactions running; median round ${percentile(observations.map((o) => o.end - o.start).sort((a, b) => a - b), 0.5).toFixed(2)} ms`)
say(`  worker batches: ${batches.length}, ${(traces.length / batches.length).toFixed(1)} events each; median ${percentile(batches.map((b) => b.end - b.start).sort((a, b) => a - b), 0.5).toFixed(1)} ms from begin to its commit callback`)
say(`  progress reads: ${progressReads.length}, head advances: ${advances.length}, in-process append signals: ${signals.length}`)
await services.stop()
await pool.end({ timeout: 5 })
await admin`drop database if exists ${admin(settings.database)} with (force)`
await admin.end({ timeout: 5 })
