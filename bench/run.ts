import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { benchAppendBatch, BATCH_SIZE } from './append-batch.js'
import { benchAppendSingle } from './append-single.js'
import { ANCHOR_NAMES, runAnchor, type AnchorResult, type AnchorVariant } from './anchor.js'
import { withBenchServer, type BenchServer } from './bench-server.js'
import { serverRssMiB } from './cpu-meter.js'
import type { LoadResult } from './load.js'
import { appendBody, loadPayload } from './payload.js'
import { benchReadStream, type ReadStreamResult } from './read-stream.js'
import { benchPersonalData, PERSONAL_DATA_BYTES, type PersonalDataResult } from './personal-data.js'
import { attempt, describeCpu, describeDb, describePayload, fail, ms, num, printLoad, ratio, say, verdict } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npm run bench`: every scenario against one long-lived server, each next to its raw-SQL anchor.
// BENCH_SECONDS (15), BENCH_WARMUP_SECONDS (3), BENCH_ONLY=single,batch,read,personal, BENCH_ANCHORS=0, BENCH_SERVER=tsx,
// BENCH_BUILD=0, BENCH_POOL_SIZE, BENCH_PORT, BENCH_CPU_PROF=dir, BENCH_KEEP_DB=1, BENCH_JSON=file (bench/README.md).
const TARGETS = { singleAt32PerSecond: 6500, batchEventsPerSecond: 35_000, readMedianMs: 90 }
const SINGLE_CONNECTIONS = [8, 32]
const BATCH_CONNECTIONS = 32
const READS = 20

const settings = attempt(loadBenchSettings)
const payload = attempt(() => loadPayload(settings.anchorsDir))
const wants = (name: string): boolean => !settings.only || settings.only.has(name)
const warmupMs = settings.warmupSeconds * 1000
const durationMs = settings.seconds * 1000

const single: Record<number, LoadResult> = {}
let batch: LoadResult | undefined
let read: ReadStreamResult | undefined
let personal: PersonalDataResult | undefined
const PERSONAL_CONNECTIONS = 8
const anchors: Partial<Record<string, AnchorResult>> = {}

const anchor = async (variant: AnchorVariant, clients: number): Promise<AnchorResult | undefined> => {
  if (!settings.anchors) return undefined
  try {
    const result = await runAnchor(settings, variant, clients, settings.seconds)
    anchors[`${variant}@${clients}`] = result
    const failed = result.failed ? `, ${result.failed} failed transactions` : ''
    say(`    anchor       ${ANCHOR_NAMES[variant]} @ ${clients} clients: ${num(result.tps)} tps = ${num(result.eventsPerSecond)} events/s, avg latency ${ms(result.latencyAverageMs ?? Number.NaN)}${failed}`)
    return result
  } catch (error) {
    say(`    anchor       ${variant} @ ${clients}: ${(error as Error).message}`)
    return undefined
  }
}

const runSingle = async (server: BenchServer): Promise<void> => {
  for (const connections of SINGLE_CONNECTIONS) {
    say(`\n[1] single-event appends with expectedVersion, ${connections} connections (100 own streams each, seeded at version 1)`)
    const result = await benchAppendSingle(server, payload, { connections, warmupMs, durationMs })
    single[connections] = result
    printLoad('ours', result, { eventsPerRequest: 1, requestBytes: Buffer.byteLength(appendBody(payload, 1, 1)), warmupSeconds: settings.warmupSeconds })
    const reference = await anchor('c', connections)
    if (reference) say(`    ours/anchor  ${ratio(result.perSecond, reference.tps)} of raw SQL (c)`)
  }
  const ceiling = await anchor('a', 32)
  if (ceiling && single[32]) say(`    ours/anchor  ${ratio(single[32].perSecond, ceiling.tps)} of raw SQL (a), the blind-insert ceiling`)
}

const runBatch = async (server: BenchServer): Promise<void> => {
  say(`\n[2] ${BATCH_SIZE}-event appends, a new stream per request (expectedVersion "no_stream"), ${BATCH_CONNECTIONS} connections`)
  const result = await benchAppendBatch(server, payload, { connections: BATCH_CONNECTIONS, warmupMs, durationMs })
  batch = result
  printLoad('ours', result, { eventsPerRequest: BATCH_SIZE, requestBytes: Buffer.byteLength(appendBody(payload, 'no_stream', BATCH_SIZE)), warmupSeconds: settings.warmupSeconds })
  const reference = await anchor('b', BATCH_CONNECTIONS)
  if (reference) say(`    ours/anchor  ${ratio(result.perSecond * BATCH_SIZE, reference.eventsPerSecond)} of raw SQL (b), in events/s`)
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
  const at32 = single[32]
  const line = (figure: string, ours: string, anchorText: string, target: string): void =>
    say(`  ${figure.padEnd(46)} ${ours.padEnd(22)} ${anchorText.padEnd(40)} ${target}`)
  say(`\nsummary (${settings.seconds} s per point after ${settings.warmupSeconds} s warm-up; ${os.cpus().length} cores, load average ${os.loadavg().map((value) => value.toFixed(1)).join(' ')})`)
  line('figure', 'ours', 'raw SQL anchor (ours/anchor)', 'target')
  for (const connections of SINGLE_CONNECTIONS) {
    const ours = single[connections]
    if (!ours) continue
    const c = anchors[`c@${connections}`]
    const target = connections === 32 ? `>= ${num(TARGETS.singleAt32PerSecond)}/s ${verdict(ours.perSecond >= TARGETS.singleAt32PerSecond)}` : ''
    line(`single-event append, expectedVersion, ${connections} conn`, `${num(ours.perSecond)} req/s`, c ? `c: ${num(c.tps)} tps (${ratio(ours.perSecond, c.tps)})` : 'c: n/a', target)
  }
  const a = anchors['a@32']
  if (at32 && a) line('', '', `a: ${num(a.tps)} tps (${ratio(at32.perSecond, a.tps)})`, '')
  if (batch) {
    const events = batch.perSecond * BATCH_SIZE
    const b = anchors[`b@${BATCH_CONNECTIONS}`]
    line(`10-event append, ${BATCH_CONNECTIONS} conn`, `${num(events)} events/s`, b ? `b: ${num(b.eventsPerSecond)} events/s (${ratio(events, b.eventsPerSecond)})` : 'b: n/a',
      `>= ${num(TARGETS.batchEventsPerSecond)} events/s ${verdict(events >= TARGETS.batchEventsPerSecond)}`)
  }
  if (read) {
    line('10,000-event stream read, whole (10 pages)', `median ${ms(read.medianMs)}`, `p99 ${ms(read.p99Ms)}`, `<= ${TARGETS.readMedianMs} ms (median) ${verdict(read.medianMs <= TARGETS.readMedianMs)}`)
  }
  if (personal) {
    const without = (personal.plain.perSecond + personal.plainAgain.perSecond) / 2
    line(`append with personalData, ${PERSONAL_CONNECTIONS} conn`, `${num(personal.personal.perSecond)} req/s`, `without: ${num(without)} req/s (${ratio(personal.personal.perSecond, without)})`, '')
    line('stream read with personalData (10 pages)', `median ${ms(personal.personalRead.medianMs)}`, `without: ${ms(personal.plainRead.medianMs)} (${ratio(personal.personalRead.medianMs, personal.plainRead.medianMs)})`, '')
  }
  const errors = [...Object.values(single).map((result) => result.errorCount), batch?.errorCount ?? 0, personal?.personal.errorCount ?? 0].reduce((sum, n) => sum + n, 0)
  say(`  errors in measured spans: ${errors}`)
}

const budgetSeconds =
  240 +
  (wants('single') ? SINGLE_CONNECTIONS.length * (settings.warmupSeconds + settings.seconds + 60) : 0) +
  (wants('batch') ? settings.warmupSeconds + settings.seconds + 60 : 0) +
  (wants('read') ? 180 : 0) +
  (wants('personal') ? 3 * (settings.warmupSeconds + settings.seconds + 60) + 360 : 0) +
  (settings.anchors ? 4 * (settings.seconds + 90) : 0)

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
  writeFileSync(settings.jsonOut, JSON.stringify({ settings: { seconds: settings.seconds, warmupSeconds: settings.warmupSeconds }, targets: TARGETS, single, batch, read, personal, anchors }, (key, value) => (key === 'samples' ? undefined : value), 2))
  say(`results written to ${settings.jsonOut}`)
}
