import { randomUUID } from 'node:crypto'
import type { BenchServer } from './bench-server.js'
import { runLoad, type LoadResult } from './load.js'
import { appendBody, type BenchPayload } from './payload.js'
import { postDiscard } from './http.js'
import { storedOnce, type StoredOnce } from './stored-once.js'

export const BATCH_SIZE = 10

export interface AppendBatchOptions {
  connections: number
  warmupMs: number
  durationMs: number
}

// Like anchor (b): 10 events per request into a brand-new stream, expectedVersion "no_stream". Ends by checking that
// the load's streams hold exactly the events acknowledged.
export const benchAppendBatch = async (server: BenchServer, payload: BenchPayload, options: AppendBatchOptions & { prefix: string }): Promise<LoadResult & { stored: StoredOnce }> => {
  const body = appendBody(payload, 'no_stream', BATCH_SIZE)
  await server.admin`checkpoint`
  let acknowledged = 0
  const result = await runLoad({
    origin: server.origin,
    meter: server.meter,
    ...options,
    worker: (_index, pool) => async () => {
      const status = await postDiscard(pool, `/streams/${options.prefix}-${randomUUID()}/events`, body)
      if (status !== 201) return String(status)
      acknowledged += BATCH_SIZE
      return null
    },
  })
  return { ...result, stored: await storedOnce(server, options.prefix, acknowledged) }
}
