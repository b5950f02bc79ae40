import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type postgres from 'postgres'
import { startCpuMeter } from './cpu-meter.js'
import { postDiscard } from './http.js'
import { runLoad, type LoadResult } from './load.js'
import { REPO_ROOT } from './settings.js'

// The "bare route" reference of issue 12: what a user would write instead of an event store
// (../shared/bench-anchors/http-insert.cjs: Fastify, one INSERT per request through a pool of 10, no checks, in a
// database of its own, annalist_anchor), driven by the client the append benches use (bench/load.ts: one undici
// connection per client, one request in flight each) with the anchors' payload as its body.
export interface BareRoute {
  origin: string
  pid: number
  body: string
  close: () => Promise<void>
}

const ANCHOR_DATABASE = 'annalist_anchor'

export const startBareRoute = async (anchorsDir: string): Promise<BareRoute> => {
  const port = 3099 + Math.floor(Math.random() * 500)
  const child = spawn(process.execPath, [path.join(anchorsDir, 'http-insert.cjs')], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout!.setEncoding('utf8')
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the bare route exited (${code}) before listening`)
  })
  while (!out.includes('listening')) out += (await Promise.race([once(child.stdout!, 'data'), exited]))[0]
  exited.catch(() => undefined)
  return {
    origin: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    body: readFileSync(path.join(anchorsDir, 'payload.json'), 'utf8').trim(),
    close: async () => {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    },
  }
}

// `admin`: a connection to the same PostgreSQL, to find the route's backends (its pool connects during the warm-up) and
// meter the CPU; without it, no CPU figures
export const benchBareRoute = (bare: BareRoute, admin: postgres.Sql | undefined, options: { connections: number; warmupMs: number; durationMs: number }): Promise<LoadResult> =>
  runLoad({
    origin: bare.origin,
    ...options,
    worker: (_, pool) => async () => {
      const status = await postDiscard(pool, '/append', bare.body)
      return status === 201 ? null : String(status)
    },
    meter: admin && (async () => {
      const backends = await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${ANCHOR_DATABASE}`
      const stopCpu = startCpuMeter(bare.pid, backends.map((row) => row.pid))
      return async () => ({ cpu: stopCpu(), db: undefined })
    }),
  })
