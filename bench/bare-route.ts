import os from 'node:os'
import path from 'node:path'
import { benchBareRoute, startBareRoute } from './bare-route-server.js'
import { REPO_ROOT } from './settings.js'

// `npx tsx bench/bare-route.ts [connections…]`: the bare route alone (bare-route-server.ts), BENCH_SECONDS (15) after
// BENCH_WARMUP_SECONDS (3) per connection count (32 when none is given). Prints requests/s. `npm run bench` drives it
// itself, in the same rounds as our appends; this is for a look at the reference on its own.
const anchorsDir = path.resolve(REPO_ROOT, process.env.BENCH_ANCHORS_DIR ?? '../shared/bench-anchors')
const seconds = Number(process.env.BENCH_SECONDS ?? 15)
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 3)
const connections = process.argv.slice(2).map(Number).filter((n) => n > 0)

const route = await startBareRoute(anchorsDir)
try {
  for (const clients of connections.length > 0 ? connections : [32]) {
    const result = await benchBareRoute(route, undefined, { connections: clients, warmupMs: warmupSeconds * 1000, durationMs: seconds * 1000 })
    const loadAverage = os.loadavg().map((value) => value.toFixed(1)).join(' ')
    process.stdout.write(`bare route @ ${clients} connections: ${result.perSecond.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, ${result.errorCount} errors (load average ${loadAverage})\n`)
  }
} finally {
  await route.close()
}
