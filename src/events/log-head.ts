import type { Sql } from '../db/connect.js'
import { SingleFlight } from '../single-flight.js'

interface Observation {
  // every position up to here was handed out ...
  position: number
  // ... by a transaction whose xid is below this one
  fence: bigint
}

const MAX_PENDING = 1024

// gap safety (SPEC "The global log"; docs/gap-safety.md): positions come from a sequence, so they are
// taken in one order and committed in another. An appender owns its xid before it takes a position.
// observe_log_head() reads the sequence's last value L and then takes a fresh xid F: every transaction
// holding a position ≤ L has an xid below F. Once the oldest xid running in this database is at or
// above F, all of them have ended and nothing at or below L can appear any more: L becomes the safe head.
// The same round that records (L, F) can settle it when nothing older is running.
export class LogHead {
  #safe = 0
  #pending: Observation[] = []
  readonly #rounds = new SingleFlight(() => this.#observe())
  #lastObserved = 0

  constructor(private readonly sql: Sql) {}

  get safe(): number {
    return this.#safe
  }

  // false while some observed positions still wait for older transactions to end
  get settled(): boolean {
    return this.#pending.length === 0
  }

  // the fence the oldest waiting observation waits for (the same one round after round: a transaction stays open)
  get waitingFence(): bigint | undefined {
    return this.#pending[0]?.fence
  }

  // One observation round that starts after this call (concurrent callers share rounds).
  refresh(): Promise<number> {
    return this.#rounds.run()
  }

  // Like refresh, but when transactions that were open at the call are what holds the head back, wait a
  // little for them (they are usually appends about to commit), so a reader sees what was acknowledged
  // before it asked. A transaction held open longer only costs freshness: the head never passes it.
  async catchUp(budgetMs = 50): Promise<number> {
    const deadline = Date.now() + budgetMs
    await this.refresh()
    const mark = this.#lastObserved
    while (this.#safe < mark && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1))
      await this.refresh()
    }
    return this.#safe
  }

  async #observe(): Promise<number> {
    const [row] = await this.sql<{ oldestRunning: string; lastPosition: number; fence: string }[]>`
      select oldest_running::text as "oldestRunning", last_position as "lastPosition", fence::text as fence
        from observe_log_head()`
    if (!row) throw new Error('observe_log_head returned no row')
    this.#lastObserved = row.lastPosition
    this.#record({ position: row.lastPosition, fence: BigInt(row.fence) })
    this.#settle(BigInt(row.oldestRunning))
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

  #settle(oldestRunning: bigint): void {
    while (this.#pending.length > 0 && this.#pending[0]!.fence <= oldestRunning) {
      this.#safe = Math.max(this.#safe, this.#pending.shift()!.position)
    }
  }
}
