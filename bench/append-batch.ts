import { randomUUID } from 'node:crypto'
import type { BenchServer } from './bench-server.js'
import { runLoad, type LoadResult } from './load.js'
import { appendBody, type BenchPayload } from './payload.js'
import { postDiscard } from './http.js'

export const BATCH_SIZE = 10

export interface AppendBatchOptions {
  connections: number
  warmupMs: number
  durationMs: number
}

// Like anchor (b): 10 events per request into a brand-new stream, expectedVersion "no_stream".
export const benchAppendBatch = async (server: BenchServer, payload: BenchPayload, options: AppendBatchOptions): Promise<LoadResult> => {
  const body = appendBody(payload, 'no_stream', BATCH_SIZE)
  await server.admin`checkpoint`
  return runLoad({
    origin: server.origin,
    meter: server.meter,
    ...options,
    worker: (_index, pool) => async () => {
      const status = await postDiscard(pool, `/streams/batch-${randomUUID()}/events`, body)
      return status === 201 ? null : String(status)
    },
  })
}
