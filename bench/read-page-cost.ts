import { readFileSync } from 'node:fs'
import os from 'node:os'
import { connect, withDatabase, type Sql } from '../src/db/connect.js'
import { migrate } from '../src/db/migrate.js'
import { appendEvents } from '../src/events/append.js'
import { eventTextColumns } from '../src/events/event-columns.js'
import { eventJson, eventJsonBytes } from '../src/events/event-json.js'
import { eventPage, takePage } from '../src/events/event-page.js'
import type { StoredEventText } from '../src/events/read-log-text.js'
import { readStreamChunks } from '../src/events/read-stream.js'
import { Upcasters } from '../src/events/upcasters.js'
import { loadPayload } from './payload.js'
import { attempt, say } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npx tsx bench/read-page-cost.ts`: what reading a 10,000-event stream whole (10 pages of 1,000, the `read` scenario
// of `npm run bench`) costs in CPU, without HTTP: the process (building each page's body) and its PostgreSQL backend
// (from /proc), for each way of building the page, alternated in the same run, READ_ROUNDS (5) rounds of 10 reads
// each; medians. CPU time, unlike latency, hardly depends on how busy a shared machine is.
//   per event in Node: the previous path, one row of text columns per event, spliced by eventJsonFromText
//   database JSON: readStreamChunks (event-page-json.ts), one row per read, written as the bytes received

const settings = attempt(loadBenchSettings)
const database = process.env.BENCH_DATABASE_NAME || 'annalist_bench_read_cost'
const rounds = Number(process.env.READ_ROUNDS ?? 5)
const EVENTS = 10_000
const PAGE = 1000
const STREAM = 'read-1'
const TICKS = 100

const backendCpuMs = async (sql: Sql): Promise<number> => {
  const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`
  const fields = readFileSync(`/proc/${row!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return ((Number(fields[11]) + Number(fields[12])) / TICKS) * 1000
}

type ReadWhole = (sql: Sql, upcasters: Upcasters) => Promise<number>

// the previous route: eventPage with text columns, each event spliced in the process, the page joined as a string
const perEventInNode: ReadWhole = async (sql, upcasters) => {
  let bytes = 0
  for (let from = 1; from <= EVENTS; from += PAGE) {
    const where = sql`tenant = 'default' and stream_id = ${STREAM} and stream_version >= ${from}`
    const page = takePage<StoredEventText>(await eventPage<StoredEventText>(sql, eventTextColumns(sql), where, { order: sql`stream_version`, key: sql`stream_version`, limit: PAGE, maxBytes: 16 * 1024 * 1024 }))
    bytes += Buffer.byteLength(`{"events":[${page.events.map((event) => eventJson(event, upcasters)).join(',')}]}`)
  }
  return bytes
}

const databaseJson: ReadWhole = async (sql, upcasters) => {
  let bytes = 0
  for (let from: number | null = 1; from !== null; ) {
    const { page } = await readStreamChunks(sql, 'default', STREAM, { from, limit: PAGE }, 1024 * 1024, upcasters.types())
    const parts: Buffer[] = [Buffer.from('{"events":[')]
    for (let chunk = await page.next(); chunk !== null; chunk = await page.next()) {
      for (const event of chunk) parts.push(Buffer.from(eventJsonBytes(event, upcasters)))
    }
    bytes += Buffer.concat(parts).length
    from = page.following
  }
  return bytes
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const main = async (): Promise<void> => {
  const admin = connect(settings.adminUrl, { max: 1 })
  await admin`drop database if exists ${admin(database)} with (force)`
  await admin`create database ${admin(database)}`
  const sql = connect(withDatabase(settings.adminUrl, database), { max: 1 })
  const upcasters = new Upcasters(sql)
  try {
    await migrate(sql)
    const { eventJson: input } = loadPayload(settings.anchorsDir)
    const events = Array.from({ length: PAGE }, () => JSON.parse(input) as { type: string; data: unknown; metadata: Record<string, unknown> })
    for (let n = 0; n < EVENTS / PAGE; n += 1) await appendEvents(sql, 'default', STREAM, { events })
    await sql`vacuum analyze events`
    const ways: [string, ReadWhole][] = [['per event in Node', perEventInNode], ['database JSON', databaseJson]]
    const figures = new Map<string, { node: number[]; backend: number[]; bytes: number }>()
    for (const [name, read] of ways) for (let i = 0; i < 3; i += 1) await read(sql, upcasters)
    for (let round = 0; round < rounds; round += 1) {
      for (const [name, read] of ways) {
        const node = process.cpuUsage()
        const backend = await backendCpuMs(sql)
        let bytes = 0
        for (let i = 0; i < 10; i += 1) bytes = await read(sql, upcasters)
        const used = process.cpuUsage(node)
        const figure = figures.get(name) ?? { node: [], backend: [], bytes }
        figure.node.push((used.user + used.system) / 1000 / 10)
        figure.backend.push(((await backendCpuMs(sql)) - backend) / 10)
        figures.set(name, figure)
      }
    }
    say(`read-page cost, ${new Date().toISOString()}: ${EVENTS} events in pages of ${PAGE}, ${rounds} rounds of 10 reads; load average ${os.loadavg().map((load) => load.toFixed(1)).join(' ')}`)
    for (const [name, { node, backend, bytes }] of figures) {
      say(`  ${name.padEnd(20)} node ${median(node).toFixed(1).padStart(6)} ms/read, backend ${median(backend).toFixed(1).padStart(6)} ms/read, total ${(median(node) + median(backend)).toFixed(1)} ms (${(bytes / 1024 / 1024).toFixed(1)} MiB)`)
    }
  } finally {
    await sql.end()
    if (process.env.BENCH_KEEP_DB !== '1') await admin`drop database if exists ${admin(database)} with (force)`
    await admin.end()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
