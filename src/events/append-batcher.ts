import type { Sql } from '../db/connect.js'
import { isRefusedByServer } from '../db/pg-errors.js'
import { appendAlone, appendBatch, type AppendRow, type PendingAppend } from './append-call.js'
import { signalAppended } from './appended.js'

// Bounds of one batch: enough to take every append a busy server has waiting, small enough that the
// batch's own time stays a few milliseconds (docs/performance.md "Group commit").
export const MAX_BATCH_APPENDS = 64
export const MAX_BATCH_CHARS = 1024 * 1024
// Batches in flight at once per pool, each for its own share of the streams, so the database can work on
// several (one batch runs on one backend, one core); measured in docs/performance.md.
export const BATCH_LANES = 2

export interface AppendBatchStats {
  // batches taken from the queue (a batch of one is a plain append_events() call), and the appends they held
  batches: number
  appends: number
  // batches the database refused whole, whose appends then ran one by one
  fallbacks: number
  largest: number
  // appends waiting now for the batch in flight to end
  waiting: number
}

interface Waiting {
  append: PendingAppend
  resolve: (row: AppendRow) => void
  reject: (error: unknown) => void
}

// Group commit (docs/performance.md) for one lane: one batch in flight. An append made while none is goes out
// at once, alone; what arrives meanwhile waits and goes in the next call, in arrival order, so a busy server
// commits many appends per transaction and an idle one adds no delay.
export class AppendBatcher {
  readonly #stats = { batches: 0, appends: 0, fallbacks: 0, largest: 0 }
  #waiting: Waiting[] = []
  #running = false

  constructor(private readonly sql: Sql) {}

  get stats(): AppendBatchStats {
    return { ...this.#stats, waiting: this.#waiting.length }
  }

  append(append: PendingAppend): Promise<AppendRow> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ append, resolve, reject })
      if (!this.#running) this.#next()
    })
  }

  #next(): void {
    this.#running = this.#waiting.length > 0
    if (this.#running) void this.#run(this.#take())
  }

  // A batch's appends are answered once the next batch has gone out (or the batcher is idle again), so an
  // append made on an answer goes out at once when nothing else waits.
  async #run(batch: Waiting[]): Promise<void> {
    let answer: () => void
    try {
      answer = await this.#commit(batch)
    } catch (error) {
      answer = () => batch.forEach((waiting) => waiting.reject(error))
    }
    this.#next()
    answer()
  }

  // The next batch: in arrival order, within the bounds, and ending before an append that repeats an event
  // id of an earlier one in it (a retry sent twice at once): that one goes next time and finds it stored.
  #take(): Waiting[] {
    const ids = new Set<string>()
    let count = 0
    let chars = 0
    while (count < this.#waiting.length && count < MAX_BATCH_APPENDS) {
      const { tenant, eventIds, events } = this.#waiting[count]!.append
      chars += events.length
      if (count > 0 && chars > MAX_BATCH_CHARS) break
      const keys = eventIds.map((id) => `${tenant} ${id}`)
      if (keys.some((key) => ids.has(key))) break
      for (const key of keys) ids.add(key)
      count++
    }
    return this.#waiting.splice(0, count)
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

// A stream always goes to the same lane, so the appends to one stream keep their arrival order; lanes hold
// disjoint streams, so their batches never wait for each other's stream locks.
export const laneOf = (tenant: string, streamId: string, lanes = BATCH_LANES): number => {
  // FNV-1a
  let hash = 0x811c9dc5
  for (const text of [tenant, streamId]) {
    for (let index = 0; index < text.length; index++) hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193)
    hash = Math.imul(hash ^ 0, 0x01000193)
  }
  return (hash >>> 0) % lanes
}

const batchers = new WeakMap<Sql, AppendBatcher[]>()

const lanesOf = (sql: Sql): AppendBatcher[] => {
  let lanes = batchers.get(sql)
  if (!lanes) {
    lanes = Array.from({ length: BATCH_LANES }, () => new AppendBatcher(sql))
    batchers.set(sql, lanes)
  }
  return lanes
}

export const appendBatched = (sql: Sql, append: PendingAppend): Promise<AppendRow> =>
  lanesOf(sql)[laneOf(append.tenant, append.streamId)]!.append(append)

// What the batchers of this pool did so far, summed over the lanes (metrics, tests).
export const appendBatchStats = (sql: Sql): AppendBatchStats =>
  (batchers.get(sql) ?? []).reduce(
    (sum, lane) => {
      const stats = lane.stats
      return {
        batches: sum.batches + stats.batches,
        appends: sum.appends + stats.appends,
        fallbacks: sum.fallbacks + stats.fallbacks,
        largest: Math.max(sum.largest, stats.largest),
        waiting: sum.waiting + stats.waiting,
      }
    },
    { batches: 0, appends: 0, fallbacks: 0, largest: 0, waiting: 0 },
  )
