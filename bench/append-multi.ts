import os from 'node:os'
import type { Pool } from 'undici'
import { withBenchServer, type BenchServer } from './bench-server.js'
import { runLoad, type LoadResult, type Step } from './load.js'
import { appendBody, loadPayload, type BenchPayload } from './payload.js'
import { postJson } from './http.js'
import { describeCpu, describeDb, num, ratio, say } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npx tsx bench/append-multi.ts [streams per request…]` (default 2): POST /appends against the same writes made
// as single appends, same server, same run. Each connection owns 100 account streams; a "transfer" appends one
// event to each of N distinct streams of its own with the versions it knows, either as one POST /appends or as N
// single appends one after another. Both count events/s; the multi-append is all-or-nothing, the singles are not.
// BENCH_SECONDS (15) after BENCH_WARMUP_SECONDS (3) per point, at BENCH_MULTI_CONNECTIONS (32), alternating
// BENCH_MULTI_ROUNDS (2) times.
const settings = loadBenchSettings()
const payload = loadPayload(settings.anchorsDir)
const widths = process.argv.slice(2).map(Number).filter((n) => n > 1)
const connections = Number(process.env.BENCH_MULTI_CONNECTIONS ?? 32)
const rounds = Number(process.env.BENCH_MULTI_ROUNDS ?? 2)
const STREAMS = 100

interface Answer {
  appends?: { lastVersion: number }[]
  lastVersion?: number
  conflicts?: { streamId: string; currentVersion: number }[]
  currentVersion?: number
}

const pick = (count: number): number[] => {
  const chosen = new Set<number>()
  while (chosen.size < count) chosen.add(Math.floor(Math.random() * STREAMS))
  return [...chosen]
}

// a 409 would mean the server lost track of a version only this connection writes: counted as an error
const worker = (prefix: string, width: number, multi: boolean) => (index: number, pool: Pool): Step => {
  const versions = new Array<number>(STREAMS).fill(0)
  const id = (stream: number): string => `${prefix}-${index}-${stream}`
  return async () => {
    const streams = pick(width)
    if (multi) {
      const entries = streams.map((stream) => `{"streamId":"${id(stream)}",${appendBody(payload, versions[stream]!, 1).slice(1)}`)
      const { status, json } = await postJson<Answer>(pool, '/appends', `{"appends":[${entries.join(',')}]}`)
      if (status !== 201) return String(status)
      json.appends!.forEach((run, k) => (versions[streams[k]!] = run.lastVersion))
      return null
    }
    for (const stream of streams) {
      const { status, json } = await postJson<Answer>(pool, `/streams/${id(stream)}/events`, appendBody(payload, versions[stream]!, 1))
      if (status !== 201) return String(status)
      versions[stream] = json.lastVersion!
    }
    return null
  }
}

const measure = (server: BenchServer, prefix: string, width: number, multi: boolean): Promise<LoadResult> =>
  runLoad({
    origin: server.origin,
    meter: server.meter,
    connections,
    warmupMs: settings.warmupSeconds * 1000,
    durationMs: settings.seconds * 1000,
    worker: worker(prefix, width, multi),
  })

const report = (label: string, result: LoadResult, width: number): number => {
  const events = result.perSecond * width
  say(`  ${label.padEnd(24)} ${num(events)} events/s (${num(result.perSecond)} transfers/s), p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, ${result.errorCount} errors`)
  say(`    ${describeCpu(result.usage?.cpu)}`)
  say(`    ${describeDb(result.usage, result.requests)}`)
  return events
}

await withBenchServer(settings, rounds * (widths.length || 1) * 2 * (settings.seconds + settings.warmupSeconds + 30) + 60, async (server) => {
  say(`annalist multi-append bench, ${new Date().toISOString()}: ${server.describe}; ${connections} connections, ${os.cpus().length} cores`)
  for (const width of widths.length > 0 ? widths : [2]) {
    for (let round = 1; round <= rounds; round++) {
      say(`\n[${width} streams per transfer, round ${round}] load average ${os.loadavg().map((value) => value.toFixed(1)).join(' ')}`)
      const multi = report('POST /appends', await measure(server, `multi${width}r${round}`, width, true), width)
      const single = report(`${width} single appends`, await measure(server, `single${width}r${round}`, width, false), width)
      say(`  multi / single          ${ratio(multi, single)} (events/s, same run)`)
    }
  }
})
