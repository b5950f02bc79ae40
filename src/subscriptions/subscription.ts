import { setTimeout as delay } from 'node:timers/promises'
import type { StoredEvent } from '../events/schemas.js'
import { eventMatcher, type EventMatcher, type LogFilter, type MatchableEvent } from './event-filter.js'
import { SSE_HEARTBEAT } from './sse-frame.js'

// pauses between attempts at a replay read that failed, about 1.3 s in all
const READ_RETRIES_MS = [20, 40, 80, 160, 320, 640]

// Where a subscription writes: an http.ServerResponse, or anything with its write/drain/close contract.
export interface SubscriptionSink {
  write(chunk: string | Buffer): boolean
  end(): unknown
  once(event: 'drain' | 'close', listener: () => void): unknown
  removeListener(event: 'drain' | 'close', listener: () => void): unknown
  readonly writableLength: number
  readonly destroyed: boolean
}

// An event of a shared batch, framed at most once for all the subscribers it goes to.
export interface FeedItem {
  readonly tenant: string
  readonly event: MatchableEvent & Pick<StoredEvent, 'globalPosition'>
  readonly frame: string
}

// A subscriber's part of a shared batch, encoded once.
export interface Chunk {
  bytes: Buffer
  count: number
}

// One shared batch's chunks by tenant and filter: subscribers that want the same events share one encoded chunk.
export type ChunkCache = Map<string, Chunk>

const NO_EVENTS: Chunk = { bytes: Buffer.alloc(0), count: 0 }

// Equal keys mean equal filters (the same tenant, the same filters with the same values).
const filterKey = (tenant: string, filter: LogFilter): string =>
  JSON.stringify([tenant, Object.entries(filter).filter(([, value]) => value !== undefined).sort(([a], [b]) => (a < b ? -1 : 1))])

export interface ReplayPage {
  chunk: string
  count: number
  // every matching event up to here is in the page
  readTo: number
}

// What a subscription needs from its fan-out (src/subscriptions/live-feed.ts).
export interface Feed {
  readonly position: number
  readPage(tenant: string, filter: LogFilter, after: number, head: number): Promise<ReplayPage>
  join(subscription: Subscription): void
  leave(subscription: Subscription): void
  detach(subscription: Subscription): void
}

export interface SubscriptionLimits {
  heartbeatMs: number
  // past either bound a live subscriber that cannot write leaves the shared feed and replays from its cursor
  maxBufferedEvents: number
  maxBufferedBytes: number
  onError?: (error: unknown) => void
}

export interface SubscriptionStats {
  mode: 'replaying' | 'live' | 'closed'
  cursor: number
  delivered: number
  bufferedEvents: number
  bufferedBytes: number
  socketBytes: number
  fallbacks: number
}

// One SSE subscriber (SPEC "Subscribe"). It replays on its own, one page at a time, until it reaches the
// feed's shared live point, then joins the feed and is handed the events of each shared read. It writes only
// while the socket takes data: a page waits for 'drain', live events queue up to a bound, and past the bound it
// leaves the feed and replays from the last event it wrote. `writtenTo` ≤ `queuedTo` are positions: every
// matching event up to them has been written / written or queued; nothing at or below `queuedTo` is sent again.
export class Subscription {
  #mode: SubscriptionStats['mode'] = 'replaying'
  #writtenTo: number
  #queuedTo: number
  #matches: EventMatcher
  readonly #filterKey: string
  #sink: SubscriptionSink | undefined
  #primed: ReplayPage | undefined
  #pending: Buffer[] = []
  #pendingEvents = 0
  #pendingBytes = 0
  #backedUp = false
  #drainWaiters: (() => void)[] = []
  #heartbeat: NodeJS.Timeout | undefined
  #delivered = 0
  #fallbacks = 0

  constructor(
    private readonly feed: Feed,
    readonly tenant: string,
    private readonly filter: LogFilter,
    after: number,
    private readonly limits: SubscriptionLimits,
  ) {
    this.#writtenTo = after
    this.#queuedTo = after
    this.#matches = eventMatcher(tenant, filter)
    this.#filterKey = filterKey(tenant, filter)
  }

  get closed(): boolean {
    return this.#mode === 'closed'
  }

  // The first replay page, read before any byte is sent (even when there is nothing to replay), so a database
  // that does not answer is a 500 problem rather than a stream that stays silent.
  async prime(): Promise<void> {
    this.#primed = await this.feed.readPage(this.tenant, this.filter, this.#queuedTo, this.feed.position)
  }

  start(sink: SubscriptionSink): void {
    if (this.#mode === 'closed') return
    this.#sink = sink
    sink.once('close', this.close)
    if (sink.destroyed) return this.close()
    this.#heartbeat = setInterval(() => this.#backedUp || this.#write(SSE_HEARTBEAT), this.limits.heartbeatMs)
    void this.#replay()
  }

  // One page goes out while the next one is read, as long as the socket takes each page at once: the socket and the
  // database work side by side. A socket that stops taking data stops the reading, and then the subscription holds
  // nothing but what the socket has not taken (SPEC "Details": slow clients cost bounded memory). A failed read (a dropped connection)
  // is tried again a few times before the stream ends; the client then resumes with Last-Event-ID.
  async #replay(): Promise<void> {
    let ahead: Promise<ReplayPage> | undefined
    let failures = 0
    while (this.#mode === 'replaying') {
      if (this.#backedUp) {
        await new Promise<void>((resolve) => this.#drainWaiters.push(resolve))
        continue
      }
      const target = this.feed.position
      if (!this.#primed && !ahead && this.#queuedTo >= target) {
        // no await between the check and the join: the feed hands over everything after `target`
        this.#mode = 'live'
        this.feed.join(this)
        return
      }
      let page: ReplayPage
      try {
        page = this.#primed ?? (await (ahead ?? this.#read(this.#queuedTo, target)))
      } catch (error) {
        ahead = undefined
        if (++failures > READ_RETRIES_MS.length) {
          this.limits.onError?.(error)
          return this.close()
        }
        await delay(READ_RETRIES_MS[failures - 1])
        continue
      }
      failures = 0
      this.#primed = ahead = undefined
      if (this.#mode !== 'replaying') return
      const readTo = Math.max(this.#queuedTo, page.readTo)
      if (page.count > 0) this.#write(page.chunk)
      this.#delivered += page.count
      this.#writtenTo = this.#queuedTo = readTo
      // only while the socket keeps up: one that stops taking data holds the page it was given, and no other
      if (!this.#backedUp && readTo < this.feed.position) ahead = this.#read(readTo, this.feed.position)
    }
  }

  #read(after: number, head: number): Promise<ReplayPage> {
    const page = this.feed.readPage(this.tenant, this.filter, after, head)
    // a read ahead that outlives the subscription must not become an unhandled rejection
    page.catch(() => undefined)
    return page
  }

  // Called by the feed, synchronously, with each shared batch while this subscription is live. A subscriber whose
  // cursor lies below the whole batch takes the chunk of its tenant and filter from `cache` (built by the first such
  // subscriber); one that just joined with its cursor inside the batch picks its own.
  deliver(items: FeedItem[], readTo: number, cache?: ChunkCache): void {
    if (this.#mode !== 'live') return
    const whole = items.length === 0 || items[0]!.event.globalPosition > this.#queuedTo
    let chunk = whole ? cache?.get(this.#filterKey) : undefined
    if (!chunk) {
      chunk = this.#pick(items)
      if (whole) cache?.set(this.#filterKey, chunk)
    }
    const { bytes, count } = chunk
    this.#queuedTo = Math.max(this.#queuedTo, readTo)
    if (!this.#backedUp) {
      if (count > 0) this.#write(bytes)
      this.#delivered += count
      this.#writtenTo = this.#queuedTo
      return
    }
    if (count === 0) return
    if (this.#pendingEvents + count > this.limits.maxBufferedEvents || this.#pendingBytes + bytes.length > this.limits.maxBufferedBytes) {
      return this.#fallBack()
    }
    this.#pending.push(bytes)
    this.#pendingEvents += count
    this.#pendingBytes += bytes.length
  }

  #pick(items: FeedItem[]): Chunk {
    let text = ''
    let count = 0
    for (const item of items) {
      if (item.event.globalPosition <= this.#queuedTo || !this.#matches(item.tenant, item.event)) continue
      text += item.frame
      count += 1
    }
    return count === 0 ? NO_EVENTS : { bytes: Buffer.from(text), count }
  }

  // Leave the shared feed and read on its own from the last event written: the socket sets the pace.
  #fallBack(): void {
    if (this.#mode !== 'live') return
    this.feed.leave(this)
    this.#mode = 'replaying'
    this.#fallbacks += 1
    this.#clearPending()
    this.#queuedTo = this.#writtenTo
    void this.#replay()
  }

  #write(chunk: string | Buffer): void {
    if (this.#sink!.write(chunk) || this.#backedUp) return
    this.#backedUp = true
    this.#sink!.once('drain', this.#onDrain)
  }

  #onDrain = (): void => {
    this.#backedUp = false
    if (this.#mode === 'live' && this.#pendingEvents > 0) {
      const chunk = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending)
      this.#delivered += this.#pendingEvents
      this.#clearPending()
      this.#write(chunk)
    }
    if (this.#mode === 'live') this.#writtenTo = this.#queuedTo
    this.#wake()
  }

  #clearPending(): void {
    this.#pending = []
    this.#pendingEvents = 0
    this.#pendingBytes = 0
  }

  #wake(): void {
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const resolve of waiters) resolve()
  }

  // Releases everything at once: the feed's reference, the timer, the socket listeners, the buffer.
  close = (): void => {
    if (this.#mode === 'closed') return
    this.#mode = 'closed'
    clearInterval(this.#heartbeat)
    this.feed.detach(this)
    this.#clearPending()
    this.#primed = undefined
    this.#sink?.removeListener('close', this.close)
    this.#sink?.removeListener('drain', this.#onDrain)
    this.#wake()
    if (this.#sink && !this.#sink.destroyed) this.#sink.end()
  }

  stats(): SubscriptionStats {
    return {
      mode: this.#mode,
      cursor: this.#writtenTo,
      delivered: this.#delivered,
      bufferedEvents: this.#pendingEvents,
      bufferedBytes: this.#pendingBytes,
      socketBytes: this.#sink?.writableLength ?? 0,
      fallbacks: this.#fallbacks,
    }
  }
}
