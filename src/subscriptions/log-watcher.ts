import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { CHANNEL } from '../db/channels.js'
import type { Sql } from '../db/connect.js'
import { onAppended } from '../events/appended.js'
import type { LogHead } from '../events/log-head.js'
import { SingleFlight } from '../single-flight.js'

const FOLLOW_UP_MS = 2
// Under a steady stream of appends every round is asked for while the one before runs, so rounds would go back to
// back, each a transaction and a scan of pg_stat_activity: at a few thousand appends/s that alone took a large share
// of a core of the database. A round starts at least this long after the one before; the head lags by at most this.
const ROUND_GAP_MS = 1
const NOTIFY_GAP_MS = 20

export interface LogWatcherOptions {
  pollMs?: number
  log?: { warn: (object: object, message: string) => void }
}

// One LISTEN connection per process wakes every reader of the log (projection workers, SSE
// subscribers): they share one head and one round of observation per wake-up. Appends do not NOTIFY
// inside their own transaction (NOTIFY takes a database-wide lock at commit, which would serialise
// every append); the server sends one coalesced NOTIFY after acknowledged appends instead. At a steady
// rate rounds come from events, never from a timer: this process's commits (appended, and ended for a
// projection batch, whose xid holds observations back) and other instances' NOTIFYs. A poll
// every `pollMs` means a lost notification or a dead LISTEN connection delays readers, never stalls them.
type Listener = (head: number) => void

export class LogWatcher extends EventEmitter<{ advance: [head: number]; newListener: [event: string | symbol, listener: Listener] }> {
  readonly #pollMs: number
  #head = 0
  readonly #rounds = new SingleFlight(() => this.#round())
  readonly #notifications = new SingleFlight(() => this.#notifyOnce())
  #notifiedSinceLastPoll = false
  #timer: NodeJS.Timeout | undefined
  #followUp: NodeJS.Timeout | undefined
  #followUpMs = FOLLOW_UP_MS
  #waitedFor: bigint | undefined
  #unlisten: (() => Promise<void>) | undefined
  #stopped = false
  #unsubscribe: (() => void) | undefined
  // listeners content with the poll's pace: an append wakes no round for them alone
  readonly #passive = new Set<Listener>()
  // the payload of this process's NOTIFYs: its own come back on its LISTEN, and its appends already woke it
  readonly #token = randomUUID()
  // appends were signalled while no listener wanted a round: the head may be behind until the next round
  #stale = false
  #lastRound = -Infinity

  constructor(
    private readonly sql: Sql,
    private readonly logHead: LogHead,
    private readonly options: LogWatcherOptions = {},
  ) {
    super()
    this.setMaxListeners(0)
    // the first eager listener after unobserved appends gets a head that covers them without waiting for the poll
    this.on('newListener', (event, listener) => {
      if (event === 'advance' && this.#stale && !this.#passive.has(listener)) void this.tick()
    })
    this.#pollMs = options.pollMs ?? 500
  }

  get head(): number {
    return this.#head
  }

  async start(): Promise<void> {
    this.#unsubscribe = onAppended(this.sql, () => this.appended())
    await this.#listen()
    this.#head = await this.logHead.catchUp()
    this.#timer = setInterval(() => void this.#poll(), this.#pollMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#unsubscribe?.()
    clearInterval(this.#timer)
    clearTimeout(this.#followUp)
    await this.#unlisten?.().catch(() => undefined)
    // a NOTIFY in flight still reaches the instances listening now, not those that start after this
    await this.#notifications.settled()
  }

  // An append of this process committed: wake local readers now (if any wants it now), other instances through NOTIFY.
  appended(): void {
    this.#wake()
    void this.#notifications.run()
  }

  // Advances reach `listener` like any other, but it wakes no observation round of its own: a round per append
  // costs the database a transaction and a scan of pg_stat_activity, too much for a reader that can wait a poll.
  followPassively(listener: Listener): void {
    this.#passive.add(listener)
    this.on('advance', listener)
  }

  unfollowPassively(listener: Listener): void {
    this.#passive.delete(listener)
    this.off('advance', listener)
  }

  #wake(): void {
    if (this.listenerCount('advance') > this.#passive.size) void this.tick()
    else this.#stale = true
  }

  // A transaction of this process that writes but takes no positions ended (a projection batch): it owned an xid,
  // so observations made while it ran wait for it. Observe again now rather than at the next append or follow-up.
  ended(): void {
    if (!this.logHead.settled) void this.tick()
  }

  // Resolves true once the gap-safe head reaches `position`, false after `timeoutMs`.
  waitFor(position: number, timeoutMs: number): Promise<boolean> {
    if (this.#head >= position) return Promise.resolve(true)
    return new Promise((resolve) => {
      const onAdvance = (head: number): void => {
        if (head < position) return
        clearTimeout(timer)
        this.off('advance', onAdvance)
        resolve(true)
      }
      const timer = setTimeout(() => {
        this.off('advance', onAdvance)
        resolve(false)
      }, timeoutMs)
      this.on('advance', onAdvance)
      void this.tick()
    })
  }

  // One observation round at a time; wake-ups during a round ask for one more. When the round leaves
  // positions waiting on transactions still open, a follow-up round comes shortly after, so the tail
  // of a burst is delivered without waiting for the poll.
  tick(): Promise<void> {
    return this.#rounds.run()
  }

  async #round(): Promise<void> {
    const gap = this.#lastRound + ROUND_GAP_MS - performance.now()
    if (gap > 0) await new Promise((resolve) => setTimeout(resolve, gap))
    if (this.#stopped) return
    this.#lastRound = performance.now()
    this.#stale = false
    try {
      const head = await this.logHead.refresh()
      if (head > this.#head) {
        this.#head = head
        this.emit('advance', head)
      }
    } catch (error) {
      this.options.log?.warn({ err: error }, 'log head observation failed')
    }
    // backs off while the same observation keeps waiting (a transaction stays open, a session idle in a transaction
    // costs little); appends merely in flight at each round make a new one wait each time, and those settle quickly
    const waiting = this.logHead.waitingFence
    this.#followUpMs = waiting !== undefined && waiting === this.#waitedFor ? Math.min(this.#followUpMs * 2, this.#pollMs) : FOLLOW_UP_MS
    this.#waitedFor = waiting
    if (!this.logHead.settled && !this.#followUp && !this.#stopped) {
      this.#followUp = setTimeout(() => {
        this.#followUp = undefined
        void this.tick()
      }, this.#followUpMs)
    }
  }

  async #poll(): Promise<void> {
    const before = this.#head
    await this.tick()
    // the head moved without a word from LISTEN: the connection may have died unnoticed, so listen anew
    if (this.#head > before && !this.#notifiedSinceLastPoll) await this.#listen().catch(() => undefined)
    this.#notifiedSinceLastPoll = false
  }

  async #listen(): Promise<void> {
    await this.#unlisten?.().catch(() => undefined)
    const request = await this.sql.listen(CHANNEL.log, (sender) => {
      this.#notifiedSinceLastPoll = true
      if (sender !== this.#token) this.#wake()
    })
    this.#unlisten = request.unlisten
  }

  // Coalesced: one NOTIFY in flight, at most one per NOTIFY_GAP_MS, however many appends land.
  async #notifyOnce(): Promise<void> {
    if (this.#stopped) return
    try {
      await this.sql`select pg_notify(${CHANNEL.log}, ${this.#token})`
      await new Promise((resolve) => setTimeout(resolve, NOTIFY_GAP_MS))
    } catch (error) {
      this.options.log?.warn({ err: error }, 'notify failed')
    }
  }
}
