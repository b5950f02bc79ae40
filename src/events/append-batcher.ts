import type { Sql } from '../db/connect.js'
import { isRefusedByServer } from '../db/pg-errors.js'
import { appendAlone, appendBatch, type AppendRow, type PendingAppend } from './append-call.js'
import { signalAppended } from './appended.js'

// Bounds of one batch: enough to take every append a busy server has waiting, small enough that the
// batch's own time stays a few milliseconds (docs/performance.md "Group commit").
export const MAX_BATCH_APPENDS = 64
export const MAX_BATCH_CHARS = 1024 * 1024

export interface AppendBatchStats {
  // database calls made for batches, and the appends they carried
  batches: number
  appends: number
  // batches the database refused whole, whose appends then ran one by one
  fallbacks: number
  largest: number
}

interface Waiting {
  append: PendingAppend
  resolve: (row: AppendRow) => void
  reject: (error: unknown) => void
}

// Group commit (docs/performance.md): one batch in flight per pool. An append made while none is goes out at
// once, alone; what arrives meanwhile waits and goes in the next call, in arrival order, so a busy server
// commits many appends per transaction and an idle one adds no delay.
export class AppendBatcher {
  readonly stats: AppendBatchStats = { batches: 0, appends: 0, fallbacks: 0, largest: 0 }
  #waiting: Waiting[] = []
  #running = false

  constructor(private readonly sql: Sql) {}

  append(append: PendingAppend): Promise<AppendRow> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ append, resolve, reject })
      if (!this.#running) void this.#drain()
    })
  }

  async #drain(): Promise<void> {
    this.#running = true
    try {
      while (this.#waiting.length > 0) await this.#commit(this.#take())
    } finally {
      this.#running = false
    }
  }

  #take(): Waiting[] {
    let count = 0
    let chars = 0
    while (count < this.#waiting.length && count < MAX_BATCH_APPENDS) {
      chars += this.#waiting[count]!.append.events.length
      if (count > 0 && chars > MAX_BATCH_CHARS) break
      count++
    }
    return this.#waiting.splice(0, count)
  }

  async #commit(batch: Waiting[]): Promise<void> {
    this.stats.batches++
    this.stats.appends += batch.length
    this.stats.largest = Math.max(this.stats.largest, batch.length)
    let rows: AppendRow[]
    try {
      rows = await appendBatch(this.sql, batch.map(({ append }) => append))
    } catch (error) {
      // Refused whole (a unique-violation race with another instance, a deadlock, data the database
      // cannot take): nothing was written, so each append runs again alone and gets its own outcome.
      // Otherwise the batch may have committed: running it again could write it twice.
      if (isRefusedByServer(error)) return this.#oneByOne(batch)
      for (const waiting of batch) waiting.reject(error)
      return
    }
    if (rows.some((row) => row.outcome === 'appended')) signalAppended(this.sql)
    batch.forEach((waiting, index) => waiting.resolve(rows[index]!))
  }

  async #oneByOne(batch: Waiting[]): Promise<void> {
    this.stats.fallbacks++
    let appended = false
    for (const { append, resolve, reject } of batch) {
      try {
        const row = await appendAlone(this.sql, append)
        appended ||= row.outcome === 'appended'
        resolve(row)
      } catch (error) {
        reject(error)
      }
    }
    if (appended) signalAppended(this.sql)
  }
}

const batchers = new WeakMap<Sql, AppendBatcher>()

export const appendBatcher = (sql: Sql): AppendBatcher => {
  let batcher = batchers.get(sql)
  if (!batcher) {
    batcher = new AppendBatcher(sql)
    batchers.set(sql, batcher)
  }
  return batcher
}

// What the batcher of this pool did so far (metrics, tests); zeros for a pool that has appended nothing.
export const appendBatchStats = (sql: Sql): AppendBatchStats =>
  ({ batches: 0, appends: 0, fallbacks: 0, largest: 0, ...batchers.get(sql)?.stats })
