import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { benchAppendBatch, BATCH_SIZE } from './append-batch.js'
import { benchAppendSingle } from './append-single.js'
import { benchBareRoute, startBareRoute } from './bare-route-server.js'
import { ANCHOR_NAMES, runAnchor, type AnchorResult, type AnchorVariant } from './anchor.js'
import { withBenchServer, type BenchServer } from './bench-server.js'
import { serverRssMiB } from './cpu-meter.js'
import type { LoadResult } from './load.js'
import { appendBody, loadPayload } from './payload.js'
import { benchReadStream, type ReadStreamResult } from './read-stream.js'
import { benchPersonalData, PERSONAL_DATA_BYTES, type PersonalDataResult } from './personal-data.js'
import { attempt, describeCpu, describeDb, describePayload, fail, ms, num, printLoad, ratio, say, verdict } from './report.js'
import { loadBenchSettings } from './settings.js'
import { describeStoredOnce, type StoredOnce } from './stored-once.js'

// `npm run bench`: every scenario against one long-lived server, each next to its references in the same run: the
// raw-SQL anchors and, for single appends, the bare Fastify INSERT route (bare-route-server.ts). The append points run
// BENCH_ROUNDS (3) rounds, each point followed at once by its references, and the summary judges issue 12's targets on
// the median over the rounds of each round's ratio, so a machine whose speed drifts between rounds moves both sides.
// BENCH_SECONDS (15), BENCH_WARMUP_SECONDS (3), BENCH_ROUNDS (3), BENCH_ONLY=single,batch,read,personal,
// BENCH_ANCHORS=0 (no references), BENCH_SERVER=tsx, BENCH_BUILD=0, BENCH_POOL_SIZE, BENCH_PORT, BENCH_CPU_PROF=dir,
// BENCH_KEEP_DB=1, BENCH_JSON=file (bench/README.md).
const TARGETS = {
  singleAt32OverBareRoute: 1.0,
  singleAt32OverRawC: 0.9,
  singleAt8OverBareRoute: 0.8,
  batchOverRawB: 0.5,
  readMedianMs: 90,
}
const SINGLE_CONNECTIONS = [8, 32]
const BATCH_CONNECTIONS = 32
const READS = 20

const settings = attempt(loadBenchSettings)
const payload = attempt(() => loadPayload(settings.anchorsDir))
const wants = (name: string): boolean => !settings.only || settings.only.has(name)
const warmupMs = settings.warmupSeconds * 1000
const durationMs = settings.seconds * 1000
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
if (!Number.isInteger(rounds) || rounds < 1) fail(new Error(`bench: BENCH_ROUNDS must be a positive whole number (got "${process.env.BENCH_ROUNDS}")`))

// per point, one result per round (undefined where a reference could not run)
const single: Record<number, LoadResult[]> = {}
const bare: Record<number, (LoadResult | undefined)[]> = {}
const batch: LoadResult[] = []
// the end checks of the append points (stored-once.ts)
const checked: StoredOnce[] = []
let read: ReadStreamResult | undefined
let personal: PersonalDataResult | undefined
const PERSONAL_CONNECTIONS = 8
const anchors: Record<string, (AnchorResult | undefined)[]> = {}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

// the median over the rounds of ours / reference, each taken within its round; NaN when no round had the reference
const medianRatio = (ours: number[], references: (number | undefined)[]): number => {
  const ratios = ours.flatMap((value, round) => (references[round] ? [value / references[round]!] : []))
  return ratios.length ? median(ratios) : Number.NaN
}

// "label: the reference's median unit (the median ratio)", and that ratio, for a reference some rounds may lack
const against = (label: string, unit: string, ours: number[], references: (number | undefined)[]): { text: string; ratio: number } => {
  const present = references.filter((value): value is number => value !== undefined)
  const over = medianRatio(ours, references)
  return { text: `${label}: ${present.length ? num(median(present)) : 'n/a'} ${unit} (${Number.isFinite(over) ? `${over.toFixed(2)}x` : 'n/a'})`, ratio: over }
}

const anchor = async (variant: AnchorVariant, clients: number, round: number): Promise<AnchorResult | undefined> => {
  if (!settings.anchors) return undefined
  const results = (anchors[`${variant}@${clients}`] ??= [])
  try {
    const result = await runAnchor(settings, variant, clients, settings.seconds)
    results[round] = result
    const failed = result.failed ? `, ${result.failed} failed transactions` : ''
    say(`    anchor       ${ANCHOR_NAMES[variant]} @ ${clients} clients: ${num(result.tps)} tps = ${num(result.eventsPerSecond)} events/s, avg latency ${ms(result.latencyAverageMs ?? Number.NaN)}${failed}`)
    return result
  } catch (error) {
    say(`    anchor       ${variant} @ ${clients}: ${(error as Error).message}`)
    return undefined
  }
}

const roundTitle = (round: number): string => (rounds > 1 ? ` (round ${round + 1} of ${rounds})` : '')

const runSingle = async (server: BenchServer): Promise<void> => {
  const route = settings.anchors ? await startBareRoute(settings.anchorsDir).catch((error: Error) => say(`  bare route: ${error.message}`)) : undefined
  try {
    for (let round = 0; round < rounds; round++) {
      for (const connections of SINGLE_CONNECTIONS) {
        say(`\n[1] single-event appends with expectedVersion, ${connections} connections (100 own streams each, seeded at version 1)${roundTitle(round)}`)
        const result = await benchAppendSingle(server, payload, { connections, warmupMs, durationMs, prefix: `occ${connections}r${round}` })
        ;(single[connections] ??= []).push(result)
        printLoad('ours', result, { eventsPerRequest: 1, requestBytes: Buffer.byteLength(appendBody(payload, 1, 1)), warmupSeconds: settings.warmupSeconds })
        checked.push(result.stored)
        say(`    ${describeStoredOnce(result.stored)}`)
        const routeResult = route ? await benchBareRoute(route, server.admin, { connections, warmupMs, durationMs }) : undefined
        ;(bare[connections] ??= [])[round] = routeResult
        if (routeResult) {
          printLoad('bare route (POST /append of ../shared/bench-anchors/http-insert.cjs, same client)', routeResult, { eventsPerRequest: 1, requestBytes: Buffer.byteLength(route!.body), warmupSeconds: settings.warmupSeconds })
          say(`    ours/route   ${ratio(result.perSecond, routeResult.perSecond)} of the bare route`)
        }
        const reference = await anchor('c', connections, round)
        if (reference) say(`    ours/anchor  ${ratio(result.perSecond, reference.tps)} of raw SQL (c)`)
      }
    }
  } finally {
    await route?.close()
  }
  const ceiling = await anchor('a', 32, 0)
  if (ceiling && single[32]) say(`    ours/anchor  ${ratio(median(single[32].map((result) => result.perSecond)), ceiling.tps)} of raw SQL (a), the blind-insert ceiling (our median)`)
}

const runBatch = async (server: BenchServer): Promise<void> => {
  for (let round = 0; round < rounds; round++) {
    say(`\n[2] ${BATCH_SIZE}-event appends, a new stream per request (expectedVersion "no_stream"), ${BATCH_CONNECTIONS} connections${roundTitle(round)}`)
    const result = await benchAppendBatch(server, payload, { connections: BATCH_CONNECTIONS, warmupMs, durationMs, prefix: `batch${round}` })
    batch.push(result)
    printLoad('ours', result, { eventsPerRequest: BATCH_SIZE, requestBytes: Buffer.byteLength(appendBody(payload, 'no_stream', BATCH_SIZE)), warmupSeconds: settings.warmupSeconds })
    checked.push(result.stored)
    say(`    ${describeStoredOnce(result.stored)}`)
    const reference = await anchor('b', BATCH_CONNECTIONS, round)
    if (reference) say(`    ours/anchor  ${ratio(result.perSecond * BATCH_SIZE, reference.eventsPerSecond)} of raw SQL (b), in events/s`)
  }
}

const runRead = async (server: BenchServer): Promise<void> => {
  say(`\n[3] reading a 10,000-event stream whole: GET /streams/{id}/events?limit=1000, following next, one connection`)
  read = await benchReadStream(server, payload, { reads: READS, warmupReads: 3 })
  say(`  ours`)
  say(`    full read    median ${ms(read.medianMs)}, p99 ${ms(read.p99Ms)} over ${read.reads} reads (body received as bytes; next taken from its tail)`)
  say(`    with parse   median ${ms(read.parsedMedianMs)}, p99 ${ms(read.parsedP99Ms)} (client JSON.parse of every page included)`)
  say(`    conditions   ${num(read.events)} events, ${read.requestsPerRead} sequential requests per read, ${num(read.responseBytes / 1024 / 1024, 1)} MiB of JSON per read; 3 warm-up reads`)
  say(`    ${describeCpu(read.usage?.cpu)} (during the plain reads)`)
  say(`    ${describeDb(read.usage, read.requests)}`)
}

const runPersonal = async (server: BenchServer): Promise<void> => {
  say(`\n[4] personal data (${PERSONAL_DATA_BYTES} B of personalData and a subject on each event): single-event appends at ${PERSONAL_CONNECTIONS} connections without, with, and again without it; then a 10,000-event stream read whole without and with it`)
  personal = await benchPersonalData(server, payload, { connections: PERSONAL_CONNECTIONS, warmupMs, durationMs, reads: READS })
  const { plain, personal: sealed, plainAgain, plainRead, personalRead } = personal
  printLoad('without', plain, { eventsPerRequest: 1, requestBytes: Buffer.byteLength(appendBody(payload, 1, 1)), warmupSeconds: settings.warmupSeconds })
  printLoad('with personalData', sealed, { eventsPerRequest: 1, requestBytes: Buffer.byteLength(appendBody(payload, 1, 1)) + PERSONAL_DATA_BYTES, warmupSeconds: settings.warmupSeconds })
  printLoad('without, again', plainAgain, { eventsPerRequest: 1, requestBytes: Buffer.byteLength(appendBody(payload, 1, 1)), warmupSeconds: settings.warmupSeconds })
  say(`    with/without ${ratio(sealed.perSecond, (plain.perSecond + plainAgain.perSecond) / 2)} (appends per second, against the mean of the two runs without)`)
  say(`  reads: without median ${ms(plainRead.medianMs)} (p99 ${ms(plainRead.p99Ms)}), with median ${ms(personalRead.medianMs)} (p99 ${ms(personalRead.p99Ms)}): with/without ${ratio(personalRead.medianMs, plainRead.medianMs)} of the time`)
}

const summary = (): void => {
  const line = (figure: string, ours: string, reference: string, target: string): void =>
    say(`  ${figure.padEnd(46)} ${ours.padEnd(24)} ${reference.padEnd(44)} ${target}`)
  const judged = (value: number, target: number): string => (Number.isFinite(value) ? `>= ${target.toFixed(1)}x ${verdict(value >= target)}` : 'not measured')
  say(`\nsummary (${settings.seconds} s per point after ${settings.warmupSeconds} s warm-up, ${rounds} round(s): medians over the rounds, each ratio taken within its round; ${os.cpus().length} cores, load average ${os.loadavg().map((value) => value.toFixed(1)).join(' ')})`)
  line('figure', 'ours', 'reference (ours/reference)', 'target')
  for (const connections of SINGLE_CONNECTIONS) {
    const ours = single[connections]
    if (!ours?.length) continue
    const perSecond = ours.map((result) => result.perSecond)
    const route = against('bare route', 'req/s', perSecond, (bare[connections] ?? []).map((result) => result?.perSecond))
    const c = against('c', 'tps', perSecond, (anchors[`c@${connections}`] ?? []).map((result) => result?.tps))
    line(`single-event append, expectedVersion, ${connections} conn`, `${num(median(perSecond))} req/s`, route.text,
      judged(route.ratio, connections === 32 ? TARGETS.singleAt32OverBareRoute : TARGETS.singleAt8OverBareRoute))
    line('', '', c.text, connections === 32 ? judged(c.ratio, TARGETS.singleAt32OverRawC) : '')
  }
  const a = anchors['a@32']?.[0]
  if (single[32]?.length && a) line('', '', `a: ${num(a.tps)} tps (${ratio(median(single[32].map((result) => result.perSecond)), a.tps)})`, '')
  if (batch.length) {
    const events = batch.map((result) => result.perSecond * BATCH_SIZE)
    const b = against('b', 'events/s', events, (anchors[`b@${BATCH_CONNECTIONS}`] ?? []).map((result) => result?.eventsPerSecond))
    line(`10-event append, ${BATCH_CONNECTIONS} conn`, `${num(median(events))} events/s`, b.text, judged(b.ratio, TARGETS.batchOverRawB))
  }
  if (read) {
    line('10,000-event stream read, whole (10 pages)', `median ${ms(read.medianMs)}`, `p99 ${ms(read.p99Ms)}`, `<= ${TARGETS.readMedianMs} ms (median) ${verdict(read.medianMs <= TARGETS.readMedianMs)}`)
  }
  if (personal) {
    const without = (personal.plain.perSecond + personal.plainAgain.perSecond) / 2
    line(`append with personalData, ${PERSONAL_CONNECTIONS} conn`, `${num(personal.personal.perSecond)} req/s`, `without: ${num(without)} req/s (${ratio(personal.personal.perSecond, without)})`, '')
    line('stream read with personalData (10 pages)', `median ${ms(personal.personalRead.medianMs)}`, `without: ${ms(personal.plainRead.medianMs)} (${ratio(personal.personalRead.medianMs, personal.plainRead.medianMs)})`, '')
  }
  const errors = [...Object.values(single).flat().map((result) => result.errorCount), ...batch.map((result) => result.errorCount), personal?.personal.errorCount ?? 0].reduce((sum, n) => sum + n, 0)
  say(`  errors in measured spans: ${errors}`)
  if (checked.length > 0) {
    const acknowledged = checked.reduce((sum, check) => sum + check.acknowledged, 0)
    const stored = checked.reduce((sum, check) => sum + check.stored, 0)
    say(`  nothing lost: ${num(acknowledged)} events acknowledged over ${checked.length} append points, ${num(stored)} stored, each point exact: ${verdict(checked.every((check) => check.met))}`)
  }
}

const budgetSeconds =
  240 +
  (wants('single') ? rounds * SINGLE_CONNECTIONS.length * (2 * (settings.warmupSeconds + settings.seconds) + 60) : 0) +
  (wants('batch') ? rounds * (settings.warmupSeconds + settings.seconds + 60) : 0) +
  (wants('read') ? 180 : 0) +
  (wants('personal') ? 3 * (settings.warmupSeconds + settings.seconds + 60) + 360 : 0) +
  (settings.anchors ? (3 * rounds + 1) * (settings.seconds + 90) : 0)

say(`annalist bench, ${new Date().toISOString()}: node ${process.version}, ${os.cpus().length} cores, ${describePayload(payload)}`)
await withBenchServer(settings, budgetSeconds, async (server) => {
  const [version] = await server.admin<{ version: string }[]>`select current_setting('server_version') as version`
  say(`server: ${server.describe}; ${settings.embedded ? 'anchors on' : 'on'} PostgreSQL ${version?.version}`)
  if (wants('single')) await runSingle(server)
  if (wants('batch')) await runBatch(server)
  if (wants('read')) await runRead(server)
  if (wants('personal')) await runPersonal(server)
  const rss = serverRssMiB(server.pid)
  if (rss !== undefined) say(`\nserver RSS at the end: ${num(rss)} MiB`)
}).catch(fail)
summary()
if (settings.jsonOut) {
  writeFileSync(settings.jsonOut, JSON.stringify({ settings: { seconds: settings.seconds, warmupSeconds: settings.warmupSeconds, rounds }, targets: TARGETS, single, bare, batch, read, personal, anchors }, (key, value) => (key === 'samples' ? undefined : value), 2))
  say(`results written to ${settings.jsonOut}`)
}
