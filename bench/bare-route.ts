import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runLoad } from './load.js'
import { postDiscard } from './http.js'
import { REPO_ROOT } from './settings.js'

// `npx tsx bench/bare-route.ts [connections…]`: the "bare route" reference of issue 12, what a user would write
// instead of an event store (../shared/bench-anchors/http-insert.cjs: Fastify, one INSERT per request, no checks),
// driven by the client `npm run bench` uses (bench/load.ts: one undici connection per client, one request in
// flight each) with the same payload, BENCH_SECONDS (15) after BENCH_WARMUP_SECONDS (3). Prints requests/s.
const anchorsDir = path.resolve(REPO_ROOT, process.env.BENCH_ANCHORS_DIR ?? '../shared/bench-anchors')
const seconds = Number(process.env.BENCH_SECONDS ?? 15)
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 3)
const connections = process.argv.slice(2).map(Number).filter((n) => n > 0)
const port = 3099 + Math.floor(Math.random() * 500)
const body = readFileSync(path.join(anchorsDir, 'payload.json'), 'utf8').trim()

const server = spawn(process.execPath, [path.join(anchorsDir, 'http-insert.cjs')], {
  cwd: REPO_ROOT,
  env: { ...process.env, PORT: String(port) },
  stdio: ['ignore', 'pipe', 'inherit'],
})
try {
  let out = ''
  server.stdout!.setEncoding('utf8')
  while (!out.includes('listening')) out += (await once(server.stdout!, 'data'))[0]
  for (const clients of connections.length > 0 ? connections : [32]) {
    const result = await runLoad({
      origin: `http://127.0.0.1:${port}`,
      connections: clients,
      warmupMs: warmupSeconds * 1000,
      durationMs: seconds * 1000,
      worker: (_, pool) => async () => {
        const status = await postDiscard(pool, '/append', body)
        return status === 201 ? null : String(status)
      },
    })
    const loadAverage = os.loadavg().map((value) => value.toFixed(1)).join(' ')
    process.stdout.write(`bare route @ ${clients} connections: ${result.perSecond.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, ${result.errorCount} errors (load average ${loadAverage})\n`)
  }
} finally {
  server.kill('SIGTERM')
}
