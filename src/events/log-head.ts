import type { Sql } from '../db/connect.js'

interface Observation {
  // every position up to here was handed out before `fence` was read ...
  position: number
  // ... by a transaction whose xid is below this snapshot's xmax
  fence: bigint
}

const MAX_PENDING = 1024

// gap safety (SPEC "The global log"; docs/gap-safety.md): positions come from a sequence, so they are
// taken in one order and committed in another. An appender owns its xid before it takes a position.
// So if we read the sequence's last value L and only then take a snapshot S, every transaction holding
// a position ≤ L has an xid below xmax(S); once a later snapshot's xmin reaches xmax(S), all of them
// have ended and nothing at or below L can appear any more. That L is the safe head.
export class LogHead {
  #safe = 0
  #pending: Observation[] = []
  #running: Promise<number> | undefined
  #queued: Promise<number> | undefined

  constructor(private readonly sql: Sql) {}

  get safe(): number {
    return this.#safe
  }

  // Resolves with a head observed by a round that started after this call, so every append
  // acknowledged before the call is covered unless an older transaction still holds the fence.
  refresh(): Promise<number> {
    if (!this.#running) {
      this.#running = this.#observe().finally(() => (this.#running = undefined))
      return this.#running
    }
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined
        return this.refresh()
      })
    return this.#queued
  }

  async #observe(): Promise<number> {
    const [sequence] = await this.sql<{ lastValue: number; isCalled: boolean }[]>`
      select last_value as "lastValue", is_called as "isCalled" from events_global_position_seq`
    // a separate statement, so its snapshot is taken after the sequence was read
    const [snapshot] = await this.sql<{ xmin: string; xmax: string }[]>`
      select pg_snapshot_xmin(s)::text as xmin, pg_snapshot_xmax(s)::text as xmax from pg_current_snapshot() as s`
    if (!sequence || !snapshot) throw new Error('log head query returned no row')
    this.#record({ position: sequence.isCalled ? sequence.lastValue : 0, fence: BigInt(snapshot.xmax) })
    this.#settle(BigInt(snapshot.xmin))
    return this.#safe
  }

  #record(observation: Observation): void {
    if (observation.position <= this.#safe) return
    const last = this.#pending.at(-1)
    if (last && last.position >= observation.position) return
    this.#pending.push(observation)
    // Dropping an observation is safe: its positions are covered by a later one with a higher fence.
    if (this.#pending.length > MAX_PENDING) this.#pending = this.#pending.filter((_, index) => index % 2 === 1)
  }

  #settle(xmin: bigint): void {
    while (this.#pending.length > 0 && this.#pending[0]!.fence <= xmin) {
      this.#safe = Math.max(this.#safe, this.#pending.shift()!.position)
    }
  }
}
