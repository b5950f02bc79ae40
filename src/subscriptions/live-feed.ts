import type { Sql } from '../db/connect.js'
import { DEFAULT_MAX_PAGE_BYTES } from '../events/event-page.js'
import { readLogText } from '../events/read-log-text.js'
import { readLogBatch, type LogBatch, type TenantEvent } from '../events/read-log-batch.js'
import type { StoredEvent } from '../events/schemas.js'
import type { Upcasters } from '../events/upcasters.js'
import type { LogFilter } from './event-filter.js'
import type { LogWatcher } from './log-watcher.js'
import { sseFrameOf } from './sse-frame.js'
import { eventJson } from '../events/event-json.js'
import { Subscription, type ChunkCache, type FeedItem, type ReplayPage, type SubscriptionLimits, type SubscriptionStats } from './subscription.js'

export interface LiveFeedOptions {
  // events per database read, shared or replay
  pageSize?: number
  // MAX_PAGE_BYTES: bytes of events per database read (always one event), so large events cost bounded memory
  maxPageBytes?: number
  maxBufferedEvents?: number
  maxBufferedBytes?: number
  log?: { warn: (object: object, message: string) => void }
}

export interface OpenOptions {
  heartbeatMs: number
  onError?: (error: unknown) => void
}

export interface LiveFeedStats {
  subscribers: number
  live: number
  // shared reads of the log since start: one per page of each new batch, however many subscribers
  reads: number
  position: number
  listening: boolean
  // a shared read is under way
  reading: boolean
  // a shared read failed and is tried again shortly
  retrying: boolean
  subscriptions: SubscriptionStats[]
}

const RETRY_MS = { first: 20, max: 1000 }

export const SUBSCRIPTION_BUFFER_LIMITS = { maxBufferedEvents: 2000, maxBufferedBytes: 2 * 1024 * 1024 }

// Framed from the stored text on first use, so live subscribers get data and metadata exactly as sent.
class SharedItem implements FeedItem {
  #frame: string | undefined

  constructor(
    readonly tenant: string,
    readonly event: TenantEvent['event'],
    private readonly upcasters: Upcasters,
  ) {}

  get frame(): string {
    if (this.#frame === undefined) {
      const { correlationId: _, ...stored } = this.event
      this.#frame = sseFrameOf(stored, eventJson(stored, this.upcasters))
    }
    return this.#frame
  }
}

// The fan-out behind GET /subscribe (SPEC "Subscribe"): one LogWatcher listener for all subscribers, and one
// unfiltered read per new batch whose events each live subscriber filters in memory. `position` is the shared
// live point: every event up to it has been handed to the subscribers that were live when it was read. It only
// follows the LogWatcher's gap-safe head, so no subscriber is ever sent a position a later commit could precede.
// With no subscriber the feed does not listen, and with no live one it moves its point without reading.
// Its reads go through the pool, never a reserved connection: postgres.js 3.4.9 crashes the process when a
// reserved connection the database dropped is written to (porsager/postgres#1208), and a pooled one reconnects.
export class LiveFeed {
  #position = 0
  #attached = new Set<Subscription>()
  #live = new Set<Subscription>()
  #reading = false
  #reads = 0
  #retry: NodeJS.Timeout | undefined
  #retryMs = RETRY_MS.first
  readonly #pageSize: number
  readonly #maxPageBytes: number

  constructor(
    private readonly sql: Sql,
    private readonly logWatcher: LogWatcher,
    private readonly upcasters: Upcasters,
    private readonly options: LiveFeedOptions = {},
  ) {
    this.#pageSize = options.pageSize ?? 1000
    this.#maxPageBytes = options.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES
  }

  get position(): number {
    return this.#position
  }

  open(tenant: string, filter: LogFilter, after: number, options: OpenOptions): Subscription {
    const limits: SubscriptionLimits = {
      heartbeatMs: options.heartbeatMs,
      maxBufferedEvents: this.options.maxBufferedEvents ?? SUBSCRIPTION_BUFFER_LIMITS.maxBufferedEvents,
      maxBufferedBytes: this.options.maxBufferedBytes ?? SUBSCRIPTION_BUFFER_LIMITS.maxBufferedBytes,
      onError: options.onError,
    }
    const subscription = new Subscription(this, tenant, filter, after, limits)
    if (this.#attached.size === 0) {
      this.#position = Math.max(this.#position, this.logWatcher.head)
      this.logWatcher.on('advance', this.#onAdvance)
    }
    this.#attached.add(subscription)
    return subscription
  }

  detach(subscription: Subscription): void {
    this.#live.delete(subscription)
    if (!this.#attached.delete(subscription) || this.#attached.size > 0) return
    this.logWatcher.off('advance', this.#onAdvance)
    clearTimeout(this.#retry)
    this.#retry = undefined
  }

  join(subscription: Subscription): void {
    if (this.#attached.has(subscription)) this.#live.add(subscription)
  }

  leave(subscription: Subscription): void {
    this.#live.delete(subscription)
  }

  // A replay page, framed from the stored JSON text; only events an upcaster changes are parsed.
  async readPage(tenant: string, filter: LogFilter, after: number, head: number): Promise<ReplayPage> {
    const page = await readLogText(this.sql, tenant, head, { ...filter, after, limit: this.#pageSize, maxBytes: this.#maxPageBytes })
    let chunk = ''
    for (const event of page.events) {
      chunk += sseFrameOf(event, eventJson(event, this.upcasters))
    }
    return { chunk, count: page.events.length, readTo: page.next ?? head }
  }

  #onAdvance = (): void => void this.#catchUp()

  async #catchUp(): Promise<void> {
    if (this.#reading || this.#retry) return
    this.#reading = true
    try {
      // the loop re-reads the head after every batch, so an advance during a read is not lost
      while (this.#position < this.logWatcher.head) {
        const after = this.#position
        if (this.#live.size === 0) {
          this.#position = this.logWatcher.head
          break
        }
        const batch = await readLogBatch(this.sql, after, this.logWatcher.head, this.#pageSize, this.#maxPageBytes)
        this.#reads += 1
        // a first subscriber after an idle spell may have moved the point on: read again from there
        if (this.#position !== after) continue
        this.#dispatch(batch)
      }
      this.#retryMs = RETRY_MS.first
    } catch (error) {
      // Nothing of the failed read was handed out and the point did not move: the live subscribers stay and the
      // read is tried again soon. Waiting for the next advance instead could hold events already below the head
      // for as long as nobody appends.
      this.options.log?.warn({ err: error }, 'subscription feed read failed')
      if (this.#attached.size > 0) {
        this.#retry = setTimeout(() => {
          this.#retry = undefined
          void this.#catchUp()
        }, this.#retryMs)
        this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MS.max)
      }
    } finally {
      this.#reading = false
    }
  }

  // The point moves only once every live subscriber has been handed the batch: if a delivery throws (a malformed
  // answer, such as the rows with empty slots postgres.js gave after a session died during its type fetch), the read
  // counts as failed and is made again, and a subscriber that already took the batch skips it (`deliver` hands out
  // nothing at or below its cursor). Moved first, the point stepped over the whole batch for every subscriber.
  #dispatch(batch: LogBatch): void {
    const items = batch.events.map(({ tenant, event }) => new SharedItem(tenant, event, this.upcasters))
    const cache: ChunkCache = new Map()
    for (const subscription of [...this.#live]) subscription.deliver(items, batch.readTo, cache)
    this.#position = batch.readTo
  }

  // Server shutdown: every stream ends, so the HTTP server can close.
  closeAll(): void {
    for (const subscription of [...this.#attached]) subscription.close()
  }

  stats(): LiveFeedStats {
    return {
      subscribers: this.#attached.size,
      live: this.#live.size,
      reads: this.#reads,
      position: this.#position,
      listening: this.logWatcher.listeners('advance').includes(this.#onAdvance),
      reading: this.#reading,
      retrying: this.#retry !== undefined,
      subscriptions: [...this.#attached].map((subscription) => subscription.stats()),
    }
  }
}
