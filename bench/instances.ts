import { spawn, type ChildProcess } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { runAnchor } from './anchor.js'
import { benchAppendSingle } from './append-single.js'
import { freePort, withBenchServer, type BenchServer } from './bench-server.js'
import type { LoadResult } from './load.js'
import { loadPayload } from './payload.js'
import { attempt, fail, ms, num, say } from './report.js'
import { loadBenchSettings, REPO_ROOT } from './settings.js'

// `npm run bench:instances`: single-event appends with expectedVersion at CLIENTS connections in total,
// through one server instance, then split evenly over two instances on the same database, then raw SQL
// (c) at the same client count; ROUNDS times in turn, medians at the end (docs/SCALING.md quotes them).
// INSTANCES_CLIENTS (32), INSTANCES_ROUNDS (3), BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (3).
const CLIENTS = Number(process.env.INSTANCES_CLIENTS ?? 32)
const ROUNDS = Number(process.env.INSTANCES_ROUNDS ?? 3)

const settings = attempt(loadBenchSettings)
const seconds = process.env.BENCH_SECONDS ? settings.seconds : 10
const payload = attempt(() => loadPayload(settings.anchorsDir))
const load = { warmupMs: settings.warmupSeconds * 1000, durationMs: seconds * 1000 }

// A second instance of the built server on the first one's database (the first one has migrated it).
const startSecond = async (first: BenchServer): Promise<{ origin: string; child: ChildProcess }> => {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: first.databaseUrl, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', API_KEYS: '', NODE_ENV: 'production' }
  if (settings.poolSize) env.DATABASE_POOL_SIZE = settings.poolSize
  const child = spawn(process.execPath, [path.join('dist', 'src', 'server.js')], { cwd: REPO_ROOT, env, stdio: 'ignore' })
  process.once('exit', () => child.kill('SIGKILL'))
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`bench: the second instance exited during start-up (${child.exitCode})`)
    const status = await request(`${origin}/health/ready`).then(async (response) => (await response.body.dump(), response.statusCode)).catch(() => 0)
    if (status === 200) return { origin, child }
  }
  throw new Error('bench: the second instance was not ready within 60 s')
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const line = (title: string, results: LoadResult[]): number => {
  const perSecond = results.reduce((sum, result) => sum + result.perSecond, 0)
  const errors = results.reduce((sum, result) => sum + result.errorCount, 0)
  const p50 = results.map((result) => ms(result.p50Ms)).join(' / ')
  const p99 = results.map((result) => ms(result.p99Ms)).join(' / ')
  say(`  ${title.padEnd(14)} ${num(perSecond).padStart(6)} appends/s  p50 ${p50}  p99 ${p99}  errors ${errors}`)
  return perSecond
}

const figures = { one: [] as number[], two: [] as number[], anchor: [] as number[] }

try {
  await withBenchServer(settings, ROUNDS * (4 * seconds + 120) + 180, async (first) => {
    const second = await startSecond(first)
    try {
      say(`instances: ${CLIENTS} client connections, 1 request in flight each, single-event appends with expectedVersion to 100 own streams per connection; ${seconds} s measured after ${settings.warmupSeconds} s warm-up`)
      say(`machine: ${os.cpus().length} CPUs, load average ${os.loadavg().map((value) => value.toFixed(1)).join(' ')} at start (shared with other work)`)
      const other: BenchServer = { ...first, origin: second.origin }
      for (let round = 1; round <= ROUNDS; round += 1) {
        say(`round ${round} (load average ${os.loadavg()[0]!.toFixed(1)})`)
        figures.one.push(line('1 instance', [await benchAppendSingle(first, payload, { ...load, connections: CLIENTS, prefix: `one${round}` })]))
        const half = Math.floor(CLIENTS / 2)
        figures.two.push(line('2 instances', await Promise.all([
          benchAppendSingle(first, payload, { ...load, connections: half, prefix: `a${round}` }),
          benchAppendSingle(other, payload, { ...load, connections: CLIENTS - half, prefix: `b${round}` }),
        ])))
        if (settings.anchors) {
          // the shared Postgres can be out of connections for pgbench's clients; say so and go on
          await runAnchor(settings, 'c', CLIENTS, seconds).then((anchor) => {
            figures.anchor.push(anchor.tps)
            say(`  raw SQL (c)    ${num(anchor.tps).padStart(6)} tps`)
          }, (error: Error) => say(`  raw SQL (c)    ${error.message.split(' | ').at(-1)}`))
        }
      }
    } finally {
      second.child.kill('SIGTERM')
    }
  })
  say(`medians of ${ROUNDS}: 1 instance ${num(median(figures.one))}/s, 2 instances ${num(median(figures.two))}/s` +
    (figures.anchor.length ? `, raw SQL (c) ${num(median(figures.anchor))} tps` : ''))
} catch (error) {
  fail(error)
}
