import type { Sql } from '../db/connect.js'
import { isRefusedByServer } from '../db/pg-errors.js'
import { appendBatch, appendRequestAlone, type AppendRow, type PendingAppend } from './append-call.js'
import { signalAppended } from './appended.js'

// Bounds of one batch: enough to take every append a busy server has waiting, small enough that the
// batch's own time stays a few milliseconds (docs/performance.md "Group commit").
export const MAX_BATCH_APPENDS = 64
export const MAX_BATCH_EVENTS = 128
export const MAX_BATCH_CHARS = 1024 * 1024
// At most this many batches in flight per pool. A new one goes out when one ends, or when appends have
// waited MAX_WAIT_MS for a batch that takes longer (large, or waiting on a lock); measured in docs/performance.md.
export const BATCHES_IN_FLIGHT = 4
export const MAX_WAIT_MS = 5

export interface AppendBatchStats {
  // batches sent (a batch of one single append is a plain append_events() call), and the requests they held
  // (a single append, or the appends of one POST /appends)
  batches: number
  appends: number
  // batches the database refused whole, whose appends then ran one by one
  fallbacks: number
  largest: number
  // appends waiting now for a batch to go in
  waiting: number
}

interface Waiting {
  // one request: its appends are written together or not at all
  request: PendingAppend[]
  streams: string[]
  resolve: (rows: AppendRow[]) => void
  reject: (error: unknown) => void
}

// Group commit (docs/performance.md). An append goes out at once when no batch is in flight; otherwise it
// waits, and the next batch takes what waits, in arrival order, when a batch ends or MAX_WAIT_MS after the
// first of them arrived, whichever comes first (within BATCHES_IN_FLIGHT). A stream is in at most one batch
// in flight, so one stream's appends keep their arrival order and our batches never wait for each other's
// stream locks. A request of several appends (POST /appends) travels as one: all its streams free, or it waits.
// The bounds count appends, and a batch always takes at least one request.
export class AppendBatcher {
  readonly #stats = { batches: 0, appends: 0, fallbacks: 0, largest: 0 }
  #waiting: Waiting[] = []
  #inFlight = 0
  readonly #busy = new Set<string>()
  #timer: NodeJS.Timeout | undefined

  constructor(private readonly sql: Sql, private readonly slots = BATCHES_IN_FLIGHT) {}

  get stats(): AppendBatchStats {
    return { ...this.#stats, waiting: this.#waiting.length }
  }

  append(request: PendingAppend[]): Promise<AppendRow[]> {
    return new Promise((resolve, reject) => {
      const streams = request.map(({ tenant, streamId }) => JSON.stringify([tenant, streamId]))
      this.#waiting.push({ request, streams, resolve, reject })
      if (this.#inFlight === 0) this.#fill()
      else this.#timer ??= setTimeout(() => this.#fill(), MAX_WAIT_MS)
    })
  }

  #fill(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    while (this.#inFlight < this.slots) {
      const batch = this.#take()
      if (batch.length === 0) return
      this.#inFlight++
      for (const { streams } of batch) for (const stream of streams) this.#busy.add(stream)
      void this.#run(batch)
    }
  }

  // A batch's appends are answered once the batches that can go have gone, so an append made on an answer
  // finds the batcher as the end of this batch left it.
  async #run(batch: Waiting[]): Promise<void> {
    let answer: () => void
    try {
      answer = await this.#commit(batch)
    } catch (error) {
      answer = () => batch.forEach((waiting) => waiting.reject(error))
    }
    this.#inFlight--
    for (const { streams } of batch) for (const stream of streams) this.#busy.delete(stream)
    this.#fill()
    answer()
  }

  // The next batch, in arrival order and within the bounds, of the requests whose streams are in no batch in
  // flight. A request that repeats an event id of one already taken (a retry sent twice at once) stays, to
  // find that one stored; once a request stays, the later ones of any of its streams stay too.
  #take(): Waiting[] {
    const taken: Waiting[] = []
    const left: Waiting[] = []
    const held = new Set(this.#busy)
    const ids = new Set<string>()
    const size = { appends: 0, events: 0, chars: 0 }
    for (const waiting of this.#waiting) {
      const keys = waiting.request.flatMap(({ tenant, eventIds }) => eventIds.map((id) => `${tenant} ${id}`))
      const adds = sizeOf(waiting.request)
      const full = taken.length > 0 && (size.appends + adds.appends > MAX_BATCH_APPENDS ||
        size.events + adds.events > MAX_BATCH_EVENTS || size.chars + adds.chars > MAX_BATCH_CHARS)
      if (full || waiting.streams.some((stream) => held.has(stream)) || keys.some((key) => ids.has(key))) {
        for (const stream of waiting.streams) held.add(stream)
        left.push(waiting)
        continue
      }
      taken.push(waiting)
      size.appends += adds.appends
      size.events += adds.events
      size.chars += adds.chars
      for (const key of keys) ids.add(key)
    }
    this.#waiting = left
    return taken
  }

  async #commit(batch: Waiting[]): Promise<() => void> {
    this.#stats.batches++
    this.#stats.appends += batch.length
    this.#stats.largest = Math.max(this.#stats.largest, batch.length)
    // one append alone costs less through append_events() than as a batch of one (docs/performance.md)
    if (batch.length === 1) return this.#oneByOne(batch)
    let rows: AppendRow[][]
    try {
      rows = await appendBatch(this.sql, batch.map(({ request }) => request))
    } catch (error) {
      // Refused whole (a unique-violation race with another instance, a deadlock, data the database
      // cannot take): nothing was written, so each append runs again alone and gets its own outcome.
      // Otherwise the batch may have committed: running it again could write it twice.
      if (!isRefusedByServer(error)) throw error
      this.#stats.fallbacks++
      return this.#oneByOne(batch)
    }
    if (rows.some((request) => request.some((row) => row.outcome === 'appended'))) signalAppended(this.sql)
    return () => batch.forEach((waiting, index) => waiting.resolve(rows[index]!))
  }

  async #oneByOne(batch: Waiting[]): Promise<() => void> {
    const answers: (() => void)[] = []
    let appended = false
    for (const { request, resolve, reject } of batch) {
      try {
        const rows = await appendRequestAlone(this.sql, request)
        appended ||= rows.some((row) => row.outcome === 'appended')
        answers.push(() => resolve(rows))
      } catch (error) {
        answers.push(() => reject(error))
      }
    }
    if (appended) signalAppended(this.sql)
    return () => answers.forEach((answer) => answer())
  }
}

const sizeOf = (request: PendingAppend[]): { appends: number; events: number; chars: number } => ({
  appends: request.length,
  events: request.reduce((sum, append) => sum + append.count, 0),
  chars: request.reduce((sum, append) => sum + append.events.length, 0),
})

const batchers = new WeakMap<Sql, AppendBatcher>()

export const appendBatched = (sql: Sql, request: PendingAppend[]): Promise<AppendRow[]> => {
  let batcher = batchers.get(sql)
  if (!batcher) {
    batcher = new AppendBatcher(sql)
    batchers.set(sql, batcher)
  }
  return batcher.append(request)
}

// What the batcher of this pool did so far (metrics, tests).
export const appendBatchStats = (sql: Sql): AppendBatchStats =>
  batchers.get(sql)?.stats ?? { batches: 0, appends: 0, fallbacks: 0, largest: 0, waiting: 0 }
