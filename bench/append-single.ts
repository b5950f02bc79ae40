import { Pool } from 'undici'
import type { BenchServer } from './bench-server.js'
import { forEachConcurrent, runLoad, type LoadResult, type Step } from './load.js'
import { appendBody, type BenchPayload } from './payload.js'
import { expectStatus, postJson } from './http.js'
import { storedOnce, type StoredOnce } from './stored-once.js'

export const STREAMS_PER_CONNECTION = 100

export interface AppendSingleOptions {
  connections: number
  warmupMs: number
  durationMs: number
  windowMs?: number
  // stream ids start with it; loads running side by side need different ones (default occ<connections>)
  prefix?: string
  onWindow?: Parameters<typeof runLoad>[0]['onWindow']
}

interface AppendAnswer {
  lastVersion?: number
  currentVersion?: number
}

const streamPath = (prefix: string, connection: number, stream: number): string =>
  `/streams/${prefix}-${connection}-${stream}/events`

// Like anchor (c): every connection owns 100 streams, seeded at version 1 before the clock starts.
const seed = async (origin: string, payload: BenchPayload, prefix: string, connections: number): Promise<void> => {
  const pool = new Pool(origin, { connections, pipelining: 1 })
  const body = appendBody(payload, 'no_stream', 1)
  const streams = Array.from({ length: connections * STREAMS_PER_CONNECTION }, (_, i) => i)
  try {
    await forEachConcurrent(streams, connections, async (i) => {
      const path = streamPath(prefix, Math.floor(i / STREAMS_PER_CONNECTION), (i % STREAMS_PER_CONNECTION) + 1)
      const { status, json } = await postJson(pool, path, body)
      expectStatus(`seeding ${path}`, status, 201, json)
    })
  } finally {
    await pool.close()
  }
}

// Each worker picks one of its own streams at random and appends with expectedVersion = the version it
// knows, so a 409 can only mean the server lost track (it is counted as an error and re-synced).
const worker = (payload: BenchPayload, prefix: string, acknowledged: { events: number }) => (index: number, pool: Pool): Step => {
  const versions = new Array<number>(STREAMS_PER_CONNECTION + 1).fill(1)
  return async () => {
    const stream = 1 + Math.floor(Math.random() * STREAMS_PER_CONNECTION)
    const { status, json } = await postJson<AppendAnswer>(pool, streamPath(prefix, index, stream), appendBody(payload, versions[stream]!, 1))
    if (status === 201 && typeof json.lastVersion === 'number') {
      versions[stream] = json.lastVersion
      acknowledged.events++
      return null
    }
    if (status === 409 && typeof json.currentVersion === 'number') versions[stream] = json.currentVersion
    return String(status)
  }
}

// The load's result, and the end check: its streams hold exactly the events acknowledged (seeds included).
export const benchAppendSingle = async (server: BenchServer, payload: BenchPayload, options: AppendSingleOptions): Promise<LoadResult & { stored: StoredOnce }> => {
  const prefix = options.prefix ?? `occ${options.connections}`
  await seed(server.origin, payload, prefix, options.connections)
  await server.admin`checkpoint`
  const acknowledged = { events: options.connections * STREAMS_PER_CONNECTION }
  const result = await runLoad({ origin: server.origin, worker: worker(payload, prefix, acknowledged), meter: server.meter, ...options })
  return { ...result, stored: await storedOnce(server, prefix, acknowledged.events) }
}
