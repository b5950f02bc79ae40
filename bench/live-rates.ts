import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { benchAppendSingle } from './append-single.js'
import type { BenchServer } from './bench-server.js'
import { percentile } from './load.js'
import type { BenchPayload } from './payload.js'
import { ms, num, say, verdict } from './report.js'
import type { BenchSettings } from './settings.js'

// Issue 12's live-lag targets: at these shares of the maximum single-append rate measured in the same run,
// the p99 from an append's acknowledgement to the event seen (a document via waitFor, an SSE delivery).
export const LIVE_LOADS = [
  { share: 0.5, p99Ms: 20 },
  { share: 0.8, p99Ms: 100 },
]

export interface LiveLoad {
  label: string
  rate: number
  // undefined: a fixed BENCH_LIVE_RATE, no target
  p99Ms: number | undefined
}

// The loads to run: BENCH_LIVE_RATE alone when set (one fixed rate, as earlier benches ran), else LIVE_LOADS of the
// maximum, which is BENCH_MAX_RATE when set, else measured here first: single-event appends with expectedVersion,
// 32 connections, closed loop (scenario 1 of `npm run bench`), on this server before anything else runs on it.
export const liveLoads = async (server: BenchServer, payload: BenchPayload, settings: BenchSettings): Promise<LiveLoad[]> => {
  const fixed = Number(process.env.BENCH_LIVE_RATE ?? 0)
  if (fixed > 0) return [{ label: `${num(fixed)}/s (BENCH_LIVE_RATE)`, rate: fixed, p99Ms: undefined }]
  let max = Number(process.env.BENCH_MAX_RATE ?? 0)
  if (max > 0) {
    say(`\n[0] maximum single-append rate: ${num(max)}/s from BENCH_MAX_RATE`)
  } else {
    say(`\n[0] maximum single-append rate: single-event appends with expectedVersion, 32 connections, closed loop, ${settings.seconds} s after ${settings.warmupSeconds} s`)
    const result = await benchAppendSingle(server, payload, { connections: 32, warmupMs: settings.warmupSeconds * 1000, durationMs: settings.seconds * 1000, prefix: 'max32' })
    max = result.perSecond
    say(`  ours         ${num(max)} appends/s, p50 ${ms(result.p50Ms)}, p99 ${ms(result.p99Ms)}; ${result.errorCount} errors; load average ${loadAverage()}`)
  }
  return LIVE_LOADS.map(({ share, p99Ms }) => ({ label: `${share * 100}% of the maximum (${num(max * share)}/s)`, rate: max * share, p99Ms }))
}

export const loadAverage = (): string => os.loadavg().map((value) => value.toFixed(1)).join(' ')

// Open loop: call i goes out at started + i/rate s, whatever the earlier ones are doing; resolves when all ended.
export const openLoop = async (rate: number, seconds: number, call: (i: number) => Promise<void>): Promise<{ achieved: number }> => {
  const started = performance.now()
  const inflight: Promise<void>[] = []
  const total = Math.round(rate * seconds)
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - performance.now()
    if (wait > 1) await sleep(wait)
    inflight.push(call(i))
  }
  const sent = (performance.now() - started) / 1000
  await Promise.all(inflight)
  return { achieved: total / Math.max(sent, seconds) }
}

// p50/p99/max of lags in ms (sorted here), with the target's verdict when there is one.
export const reportLags = (lags: number[], load: LiveLoad, exact: boolean): { p50: number; p99: number; max: number; met: boolean | undefined } => {
  lags.sort((a, b) => a - b)
  const p50 = percentile(lags, 0.5)
  const p99 = percentile(lags, 0.99)
  const max = lags.at(-1) ?? Number.NaN
  const met = load.p99Ms === undefined ? undefined : exact && p99 <= load.p99Ms
  say(`  ours         p50 ${ms(p50)}, p99 ${ms(p99)}, max ${ms(max)} over ${num(lags.length)}`)
  if (load.p99Ms !== undefined) say(`    target       p99 <= ${load.p99Ms} ms at ${load.label}: ${verdict(met!)}`)
  return { p50, p99, max, met }
}
