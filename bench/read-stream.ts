import { Client, type Dispatcher } from 'undici'
import type { BenchServer } from './bench-server.js'
import type { Usage } from './cpu-meter.js'
import { percentile } from './load.js'
import { appendBody, type BenchPayload } from './payload.js'
import { expectStatus, postJson } from './http.js'

export const STREAM_EVENTS = 10_000
const APPEND_BATCH = 1000
const PAGE = 1000
const STREAM_ID = 'read-1'

export interface ReadStreamOptions {
  reads: number
  warmupReads: number
  // the stream read (default read-1); reads running in one bench need different ones
  streamId?: string
}

export interface ReadStreamResult {
  events: number
  requestsPerRead: number
  responseBytes: number
  reads: number
  // body received in full, as bytes (every byte read, none decoded); `next` taken from its tail (the client-side
  // decoding and JSON.parse are not the server's time)
  medianMs: number
  p99Ms: number
  // the same, with the client's JSON.parse of every page included
  parsedMedianMs: number
  parsedP99Ms: number
  usage: Usage | undefined
  // requests in the metered span (the plain reads), to put database work per request
  requests: number
}

interface ReadOnce {
  ms: number
  requests: number
  bytes: number
}

const NEXT_AT_END = /"next":(null|\d+)\}\s*$/

const pagePath = (streamId: string, from: number | null): string =>
  `/streams/${streamId}/events?limit=${PAGE}${from === null ? '' : `&from=${from}`}`

// Every byte of a body, as received (not decoded into a string), and its last TAIL bytes as text.
const TAIL = 64
const receive = async (body: Dispatcher.ResponseData['body']): Promise<{ bytes: number; tail: string }> => {
  let bytes = 0
  let tail = Buffer.alloc(0)
  for await (const chunk of body as AsyncIterable<Buffer>) {
    bytes += chunk.length
    tail = Buffer.concat([tail, chunk.subarray(-TAIL)]).subarray(-TAIL)
  }
  return { bytes, tail: tail.toString('utf8') }
}

export const readWhole = async (client: Client, streamId: string, parse: boolean): Promise<ReadOnce> => {
  const started = performance.now()
  let from: number | null = null
  let requests = 0
  let bytes = 0
  do {
    const response: Dispatcher.ResponseData = await client.request({ path: pagePath(streamId, from), method: 'GET' })
    requests += 1
    if (response.statusCode !== 200) throw new Error(`bench: reading ${streamId} answered ${response.statusCode}: ${(await response.body.text()).slice(0, 300)}`)
    if (parse) {
      const text: string = await response.body.text()
      bytes += Buffer.byteLength(text)
      from = (JSON.parse(text) as { next: number | null }).next
    } else {
      const body = await receive(response.body)
      bytes += body.bytes
      const match = NEXT_AT_END.exec(body.tail)
      if (!match) throw new Error('bench: a stream page does not end with "next"')
      from = match[1] === 'null' ? null : Number(match[1])
    }
  } while (from !== null && requests <= STREAM_EVENTS / PAGE + 1)
  return { ms: performance.now() - started, requests, bytes }
}

// Untimed: the paging really returns versions 1..10,000 once each, in order.
const verify = async (client: Client, streamId: string): Promise<void> => {
  let from: number | null = null
  let expected = 1
  do {
    const response: Dispatcher.ResponseData = await client.request({ path: pagePath(streamId, from), method: 'GET' })
    const page: { events: { streamVersion: number }[]; next: number | null } = (await response.body.json()) as { events: { streamVersion: number }[]; next: number | null }
    for (const event of page.events) {
      if (event.streamVersion !== expected) throw new Error(`bench: read version ${event.streamVersion}, expected ${expected}`)
      expected += 1
    }
    from = page.next
  } while (from !== null)
  if (expected - 1 !== STREAM_EVENTS) throw new Error(`bench: read ${expected - 1} events, expected ${STREAM_EVENTS}`)
}

const timeReads = async (client: Client, streamId: string, count: number, parse: boolean): Promise<ReadOnce[]> => {
  const runs: ReadOnce[] = []
  for (let i = 0; i < count; i += 1) runs.push(await readWhole(client, streamId, parse))
  return runs
}

const sortedMs = (runs: ReadOnce[]): Float64Array => Float64Array.from(runs, (run) => run.ms).sort()

// The stream of STREAM_EVENTS events a read scenario reads, appended 1,000 at a time and checked.
export const seedReadStream = async (server: BenchServer, client: Client, payload: BenchPayload, streamId: string): Promise<void> => {
  for (let version = 0; version < STREAM_EVENTS; version += APPEND_BATCH) {
    const { status, json } = await postJson(client, `/streams/${streamId}/events`, appendBody(payload, version, APPEND_BATCH))
    expectStatus(`appending to ${streamId}`, status, 201, json)
  }
  await server.admin`checkpoint`
  await verify(client, streamId)
}

export const benchReadStream = async (server: BenchServer, payload: BenchPayload, options: ReadStreamOptions): Promise<ReadStreamResult> => {
  const client = new Client(server.origin, { pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 })
  const streamId = options.streamId ?? STREAM_ID
  try {
    await seedReadStream(server, client, payload, streamId)
    await timeReads(client, streamId, options.warmupReads, false)
    const stopMeter = await server.meter()
    const plain = await timeReads(client, streamId, options.reads, false)
    const usage = await stopMeter()
    const parsed = await timeReads(client, streamId, options.reads, true)
    const first = plain[0]!
    const ms = sortedMs(plain)
    const parsedMs = sortedMs(parsed)
    return {
      events: STREAM_EVENTS,
      requestsPerRead: first.requests,
      responseBytes: first.bytes,
      reads: options.reads,
      medianMs: percentile(ms, 0.5),
      p99Ms: percentile(ms, 0.99),
      parsedMedianMs: percentile(parsedMs, 0.5),
      parsedP99Ms: percentile(parsedMs, 0.99),
      usage,
      requests: plain.reduce((sum, run) => sum + run.requests, 0),
    }
  } finally {
    await client.close()
  }
}
