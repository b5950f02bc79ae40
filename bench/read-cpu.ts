import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Client } from 'undici'
import { startBenchServer, type BenchServer } from './bench-server.js'
import { loadPayload } from './payload.js'
import { readWhole, seedReadStream } from './read-stream.js'
import { attempt, fail, say } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npx tsx bench/read-cpu.ts <checkout> [<checkout>…]`: what a whole read of a 10,000-event stream (the `read`
// scenario: 10 pages of 1,000) costs in CPU, split between the server, its Postgres backends and the client, for
// each built checkout's server side by side (each on a database of its own), READ_ROUNDS (16) rounds of
// READ_PER_ROUND (5) reads each, the order alternating; medians per read. CPU time, unlike latency, hardly depends
// on how busy a shared machine is; wall time is printed beside it. Linux /proc only.
const settings = attempt(loadBenchSettings)
const roots = process.argv.slice(2).map((root) => path.resolve(root))
if (roots.length === 0) fail(new Error('usage: npx tsx bench/read-cpu.ts <built checkout> [<built checkout>…]'))
const rounds = Number(process.env.READ_ROUNDS ?? 16)
const perRound = Number(process.env.READ_PER_ROUND ?? 5)
const payload = attempt(() => loadPayload(settings.anchorsDir))
const STREAM = 'read-cpu'

// user + system time of a process, in ms (clock ticks of 10 ms)
const cpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

interface Side {
  root: string
  server: BenchServer
  client: Client
  backends: number[]
  figures: { wall: number[]; server: number[]; backends: number[]; client: number[] }
}

const backendsMs = (side: Side): number =>
  side.backends.reduce((sum, pid) => {
    try {
      return sum + cpuMs(pid)
    } catch {
      return sum
    }
  }, 0)

const start = async (root: string, index: number): Promise<Side> => {
  const database = `${settings.database}_${index}`
  const server = await startBenchServer({ ...settings, build: false, database }, root)
  const client = new Client(server.origin, { pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 })
  await seedReadStream(server, client, payload, STREAM)
  for (let warm = 0; warm < 3; warm++) await readWhole(client, STREAM, false)
  const backends = await server.admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${database} and application_name = 'annalist'`
  return { root, server, client, backends: backends.map((row) => row.pid), figures: { wall: [], server: [], backends: [], client: [] } }
}

const measure = async (side: Side): Promise<void> => {
  const server = cpuMs(side.server.pid)
  const backends = backendsMs(side)
  const client = process.cpuUsage()
  const started = performance.now()
  for (let read = 0; read < perRound; read++) await readWhole(side.client, STREAM, false)
  const used = process.cpuUsage(client)
  side.figures.wall.push((performance.now() - started) / perRound)
  side.figures.server.push((cpuMs(side.server.pid) - server) / perRound)
  side.figures.backends.push((backendsMs(side) - backends) / perRound)
  side.figures.client.push((used.user + used.system) / 1000 / perRound)
}

const sides: Side[] = []
try {
  for (const [index, root] of roots.entries()) sides.push(await start(root, index))
  for (let round = 0; round < rounds; round++) for (const side of round % 2 === 0 ? sides : [...sides].reverse()) await measure(side)
  say(`read CPU, ${new Date().toISOString()}: ${rounds} rounds of ${perRound} whole reads; load average ${os.loadavg().map((load) => load.toFixed(1)).join(' ')}`)
  for (const { root, figures } of sides) {
    const [wall, server, backends, client] = [figures.wall, figures.server, figures.backends, figures.client].map(median) as [number, number, number, number]
    say(`  ${root}: per read server ${server.toFixed(1)} ms, backends ${backends.toFixed(1)} ms, client ${client.toFixed(1)} ms (sum ${(server + backends + client).toFixed(1)}); wall ${wall.toFixed(1)} ms`)
  }
} catch (error) {
  fail(error)
} finally {
  for (const side of sides) {
    await side.client.close()
    await side.server.stop()
  }
}
