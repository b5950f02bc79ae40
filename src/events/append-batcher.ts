import type { Sql } from '../db/connect.js'
import { isRefusedByServer } from '../db/pg-errors.js'
import { appendAlone, appendBatch, type AppendRow, type PendingAppend } from './append-call.js'
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
  // batches sent (a batch of one is a plain append_events() call), and the appends they held
  batches: number
  appends: number
  // batches the database refused whole, whose appends then ran one by one
  fallbacks: number
  largest: number
  // appends waiting now for a batch to go in
  waiting: number
}

interface Waiting {
  append: PendingAppend
  stream: string
  resolve: (row: AppendRow) => void
  reject: (error: unknown) => void
}

// Group commit (docs/performance.md). An append goes out at once when no batch is in flight; otherwise it
// waits, and the next batch takes what waits, in arrival order, when a batch ends or MAX_WAIT_MS after the
// first of them arrived, whichever comes first (within BATCHES_IN_FLIGHT). A stream is in at most one batch
// in flight, so one stream's appends keep their arrival order and our batches never wait for each other's
// stream locks.
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

  append(append: PendingAppend): Promise<AppendRow> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ append, stream: JSON.stringify([append.tenant, append.streamId]), resolve, reject })
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
      for (const { stream } of batch) this.#busy.add(stream)
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
    for (const { stream } of batch) this.#busy.delete(stream)
    this.#fill()
    answer()
  }

  // The next batch, in arrival order and within the bounds, of the appends whose stream is in no batch in
  // flight. An append that repeats an event id of one already taken (a retry sent twice at once) stays, to
  // find that one stored; once an append of a stream stays, the later ones of that stream stay too.
  #take(): Waiting[] {
    const taken: Waiting[] = []
    const left: Waiting[] = []
    const held = new Set(this.#busy)
    const ids = new Set<string>()
    let events = 0
    let chars = 0
    for (const waiting of this.#waiting) {
      const { tenant, eventIds, count, events: text } = waiting.append
      const keys = eventIds.map((id) => `${tenant} ${id}`)
      const full = taken.length > 0 &&
        (taken.length >= MAX_BATCH_APPENDS || events + count > MAX_BATCH_EVENTS || chars + text.length > MAX_BATCH_CHARS)
      if (full || held.has(waiting.stream) || keys.some((key) => ids.has(key))) {
        held.add(waiting.stream)
        left.push(waiting)
        continue
      }
      taken.push(waiting)
      events += count
      chars += text.length
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
    let rows: AppendRow[]
    try {
      rows = await appendBatch(this.sql, batch.map(({ append }) => append))
    } catch (error) {
      // Refused whole (a unique-violation race with another instance, a deadlock, data the database
      // cannot take): nothing was written, so each append runs again alone and gets its own outcome.
      // Otherwise the batch may have committed: running it again could write it twice.
      if (!isRefusedByServer(error)) throw error
      this.#stats.fallbacks++
      return this.#oneByOne(batch)
    }
    if (rows.some((row) => row.outcome === 'appended')) signalAppended(this.sql)
    return () => batch.forEach((waiting, index) => waiting.resolve(rows[index]!))
  }

  async #oneByOne(batch: Waiting[]): Promise<() => void> {
    const answers: (() => void)[] = []
    let appended = false
    for (const { append, resolve, reject } of batch) {
      try {
        const row = await appendAlone(this.sql, append)
        appended ||= row.outcome === 'appended'
        answers.push(() => resolve(row))
      } catch (error) {
        answers.push(() => reject(error))
      }
    }
    if (appended) signalAppended(this.sql)
    return () => answers.forEach((answer) => answer())
  }
}

const batchers = new WeakMap<Sql, AppendBatcher>()

export const appendBatched = (sql: Sql, append: PendingAppend): Promise<AppendRow> => {
  let batcher = batchers.get(sql)
  if (!batcher) {
    batcher = new AppendBatcher(sql)
    batchers.set(sql, batcher)
  }
  return batcher.append(append)
}

// What the batcher of this pool did so far (metrics, tests).
export const appendBatchStats = (sql: Sql): AppendBatchStats =>
  batchers.get(sql)?.stats ?? { batches: 0, appends: 0, fallbacks: 0, largest: 0, waiting: 0 }
