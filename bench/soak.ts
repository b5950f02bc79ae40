import os from 'node:os'
import { benchAppendSingle } from './append-single.js'
import { describeStoredOnce } from './stored-once.js'
import { withBenchServer } from './bench-server.js'
import { serverRssMiB } from './cpu-meter.js'
import type { WindowStats } from './load.js'
import { appendBody, loadPayload } from './payload.js'
import { attempt, describeCpu, describeDb, describeErrors, describePayload, fail, ms, num, say, verdict } from './report.js'
import { loadBenchSettings } from './settings.js'
import { prefill } from './soak-prefill.js'
import { startSoakStats } from './soak-stats.js'

// `npm run bench:soak`: single-event appends with expectedVersion at 32 connections for SOAK_SECONDS (300),
// throughput per SOAK_WINDOW_SECONDS (30) window, then the last minute against the first. Each window also gets the
// database's figures per event stored (bench/soak-stats.ts), which tell why throughput moves when the load does not.
const CONNECTIONS = 32
const TOLERANCE = 0.05

const settings = attempt(loadBenchSettings)
const payload = attempt(() => loadPayload(settings.anchorsDir))
const durationMs = settings.soakSeconds * 1000
// WAL read per window for the sample (SOAK_WAL_SAMPLE_MB, 0: none)
// events stored before the clock starts (bench/soak-prefill.ts); the time budget allows a millisecond each
const prefillEvents = Number(process.env.SOAK_PREFILL_EVENTS ?? 0)
const walSampleMb = Number(process.env.SOAK_WAL_SAMPLE_MB ?? 24)
const windowMs = Math.min(settings.soakWindowSeconds, settings.soakSeconds) * 1000
// a minute each, or a third of a short run so the two ends never overlap
const spanMs = Math.min(60_000, Math.floor(durationMs / 3))

say(`annalist soak, ${new Date().toISOString()}: node ${process.version}, ${os.cpus().length} cores, ${describePayload(payload)}`)
say(`${CONNECTIONS} connections, single-event appends with expectedVersion (${Buffer.byteLength(appendBody(payload, 1, 1))} B body), ${settings.soakSeconds} s after ${settings.warmupSeconds} s warm-up, windows of ${windowMs / 1000} s`)

const outcome = await withBenchServer(settings, settings.soakSeconds + settings.warmupSeconds + 300 + prefillEvents / 1000, async (server) => {
  say(`server: ${server.describe}`)
  if (prefillEvents > 0) {
    const started = Date.now()
    await prefill(server.databaseUrl, payload, prefillEvents)
    say(`prefilled ${num(prefillEvents)} events through append_events() in ${num((Date.now() - started) / 1000)} s (SOAK_PREFILL_EVENTS)`)
  }
  const stats = await startSoakStats(server.databaseUrl, Number.isFinite(walSampleMb) ? walSampleMb : 0)
  let printing = Promise.resolve()
  const line = (window: WindowStats): void => {
    const rss = serverRssMiB(server.pid)
    const figures = stats.window().catch((error: unknown) => [`database figures: n/a (${error instanceof Error ? error.message : String(error)})`])
    printing = printing.then(async () => {
      for (const text of await figures) say(`              ${text}`)
    })
    say(`  ${`${num(window.fromSeconds)}-${num(window.toSeconds)} s`.padEnd(11)} ${num(window.perSecond).padStart(7)} req/s   p50 ${ms(window.p50Ms).padStart(9)}   p99 ${ms(window.p99Ms).padStart(9)}   errors ${window.errors}${rss === undefined ? '' : `   server RSS ${num(rss)} MiB`}`)
  }
  const meter = async (): ReturnType<typeof server.meter> => {
    await stats.begin()
    return server.meter()
  }
  try {
    return await benchAppendSingle({ ...server, meter }, payload, { connections: CONNECTIONS, warmupMs: settings.warmupSeconds * 1000, durationMs, windowMs, onWindow: line })
  } finally {
    await printing
    await stats.end()
  }
}).catch(fail)

const result = outcome
const cpu = result.usage?.cpu
const first = result.samples.window(0, 0, spanMs)
const last = result.samples.window(1, durationMs - spanMs, durationMs)
const change = last.perSecond / first.perSecond
const within = change >= 1 - TOLERANCE
const span = `${num(spanMs / 1000)} s`
say(`\n${describeStoredOnce(result.stored)}`)
say(`overall      ${num(result.perSecond)} req/s, p50 ${ms(result.p50Ms)}, p99 ${ms(result.p99Ms)}, max ${ms(result.maxMs)}; errors ${describeErrors(result)}`)
say(`             ${describeCpu(cpu)}`)
say(`             ${describeDb(result.usage, result.requests)}`)
say(`first ${span}  ${num(first.perSecond)} req/s, p99 ${ms(first.p99Ms)}`)
say(`last ${span}   ${num(last.perSecond)} req/s, p99 ${ms(last.p99Ms)}`)
say(`last/first   ${change.toFixed(3)} (${((change - 1) * 100).toFixed(1)}%): target within ${TOLERANCE * 100}% of the first (no more than ${TOLERANCE * 100}% slower) ${verdict(within)}${change > 1 + TOLERANCE ? ' (faster by more than 5%: not a degradation)' : ''}`)
if (spanMs < 60_000) say(`(SOAK_SECONDS=${settings.soakSeconds} is short: compared the first and last ${span} instead of minutes)`)
