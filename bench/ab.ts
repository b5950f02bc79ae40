import os from 'node:os'
import path from 'node:path'
import { Client } from 'undici'
import { benchAppendSingle } from './append-single.js'
import { startBenchServer, type BenchServer } from './bench-server.js'
import { percentile } from './load.js'
import { loadPayload } from './payload.js'
import { personalPayload } from './personal-data.js'
import { readWhole, seedReadStream } from './read-stream.js'
import { attempt, fail, ms, num, say } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npx tsx bench/ab.ts <other checkout>`: this checkout's server (A) and another checkout's (B, built with
// `npm run build` there) side by side, each on a database of its own, driven in turns: single-event appends at
// AB_CONNECTIONS (8) for BENCH_SECONDS each, A then B then B then A…, and whole reads of a 10,000-event stream,
// one on A, one on B, alternately. On a busy machine the load moves under any one run; taking turns puts A and B
// under the same load, and the per-round ratios B/A (their median) are what compare them. With AB_PERSONAL=1 A's
// second workload carries personalData (A against itself: the cost of personal data), and B is not started.
const settings = attempt(loadBenchSettings)
const other = process.argv[2]
const personalOnly = process.env.AB_PERSONAL === '1'
if (!other && !personalOnly) fail(new Error('usage: npx tsx bench/ab.ts <path of another built checkout> (or AB_PERSONAL=1)'))
const rounds = Number(process.env.AB_ROUNDS ?? 6)
const connections = Number(process.env.AB_CONNECTIONS ?? 8)
const reads = Number(process.env.AB_READS ?? 10)
const payload = attempt(() => loadPayload(settings.anchorsDir))
const warmupMs = settings.warmupSeconds * 1000
const durationMs = settings.seconds * 1000

const median = (values: number[]): number => percentile(Float64Array.from(values).sort(), 0.5)

interface Side {
  name: string
  server: BenchServer
  payload: typeof payload
}

const appendRounds = async (a: Side, b: Side): Promise<number[]> => {
  const ratios: number[] = []
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [a, b] : [b, a]
    const rates = new Map<string, number>()
    for (const side of order) {
      const result = await benchAppendSingle(side.server, side.payload, { connections, warmupMs, durationMs, prefix: `ab${round}-${side.name}` })
      rates.set(side.name, result.perSecond)
    }
    ratios.push(rates.get(b.name)! / rates.get(a.name)!)
    say(`  appends round ${round + 1}: ${a.name} ${num(rates.get(a.name)!)} req/s, ${b.name} ${num(rates.get(b.name)!)} req/s, ${b.name}/${a.name} ${ratios.at(-1)!.toFixed(3)}`)
  }
  return ratios
}

const readRounds = async (a: Side, b: Side): Promise<{ ratios: number[]; aMs: number[]; bMs: number[] }> => {
  const clients = new Map<string, Client>()
  for (const side of [a, b]) {
    const client = new Client(side.server.origin, { pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 })
    clients.set(side.name, client)
    await seedReadStream(side.server, client, side.payload, `ab-read-${side.name}`)
    for (let warm = 0; warm < 3; warm++) await readWhole(client, `ab-read-${side.name}`, false)
  }
  const aMs: number[] = []
  const bMs: number[] = []
  const ratios: number[] = []
  for (let read = 0; read < reads; read++) {
    const order = read % 2 === 0 ? [a, b] : [b, a]
    const took = new Map<string, number>()
    for (const side of order) took.set(side.name, (await readWhole(clients.get(side.name)!, `ab-read-${side.name}`, false)).ms)
    aMs.push(took.get(a.name)!)
    bMs.push(took.get(b.name)!)
    ratios.push(took.get(b.name)! / took.get(a.name)!)
  }
  for (const client of clients.values()) await client.close()
  return { ratios, aMs, bMs }
}

say(`annalist A/B bench, ${new Date().toISOString()}: node ${process.version}, ${os.cpus().length} cores, ${rounds} rounds of ${settings.seconds} s appends at ${connections} connections, ${reads} whole reads each`)
const servers: BenchServer[] = []
try {
  const a = await startBenchServer({ ...settings, database: `${settings.database}_a` })
  servers.push(a)
  const b = personalOnly ? a : await startBenchServer({ ...settings, database: `${settings.database}_b`, build: false }, path.resolve(other!))
  if (!personalOnly) servers.push(b)
  const sideA: Side = { name: personalOnly ? 'without' : 'A', server: a, payload }
  const sideB: Side = personalOnly ? { name: 'with', server: a, payload: personalPayload(payload) } : { name: 'B', server: b, payload }
  say(`A: ${a.describe}${personalOnly ? '' : `\nB: ${b.describe} (${path.resolve(other!)})`}`)
  const appends = await appendRounds(sideA, sideB)
  const read = await readRounds(sideA, sideB)
  say(`\nsummary (load average ${os.loadavg().map((value) => value.toFixed(1)).join(' ')})`)
  say(`  appends ${sideB.name}/${sideA.name}: median ${median(appends).toFixed(3)} over ${appends.length} rounds (min ${Math.min(...appends).toFixed(3)}, max ${Math.max(...appends).toFixed(3)}); ${sideA.name}/${sideB.name} median ${median(appends.map((value) => 1 / value)).toFixed(3)}`)
  say(`  whole reads: ${sideA.name} median ${ms(median(read.aMs))}, ${sideB.name} median ${ms(median(read.bMs))}; ${sideB.name}/${sideA.name} time median ${median(read.ratios).toFixed(3)} over ${reads} pairs`)
} catch (error) {
  fail(error)
} finally {
  for (const server of servers) await server.stop()
}
