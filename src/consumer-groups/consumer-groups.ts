import { CHANNEL } from '../db/channels.js'
import type { Sql } from '../db/connect.js'
import { eventJson } from '../events/event-json.js'
import type { LogHead } from '../events/log-head.js'
import type { Upcasters } from '../events/upcasters.js'
import type { LogWatcher } from '../subscriptions/log-watcher.js'
import { getGroup } from './groups.js'
import { lookAtGroup, type Delivery, type Look, type LookOptions } from './lease.js'
import { replayParked } from './parked.js'
import { ackEvents, nackEvents } from './settle.js'
import type { AckResult, NackRequest, NackResult } from './schemas.js'

// A waiting poll looks again at least this often: acks, nacks and replays made on another instance free streams
// without a word to this one.
const RECHECK_MS = 1000
// another poll is filling the group: look again this soon for what it copies
const FILL_RETRY_MS = 5

// the name of a group's wake-ups in this process
const keyOf = (group: { tenant: string; name: string }): string => `${group.tenant}/${group.name}`

// what a poll had seen when it last looked: the gap-safe head and the group's changes in this process
interface Seen {
  head: number
  changes: number
}

export interface ConsumerGroupsOptions {
  maxPageBytes: number
}

// The polls, acks and nacks of every consumer group in this process (SPEC "Consumer groups"). All state is in the
// database; what is here only wakes waiting polls: the log watcher's `advance` (the one LISTEN per process) when
// the log grows, and this process's own acks, nacks and replays, which may free a stream.
export class ConsumerGroups {
  // per group, the polls waiting in this process, in arrival order
  readonly #waiting = new Map<string, (() => void)[]>()
  // per group: how many changes this process made, so a poll knows whether one came while it looked
  readonly #changes = new Map<string, number>()
  // per group: how far it had copied the log at this process's last look, and whether that look ran short of what it
  // asked for, so a poll that arrives behind the head after a short look fills in its first call instead of a second.
  // After a full look the group may still hold copied events nobody has leased (a catch-up copies 2,000 at a time and
  // polls take 100): filling first then would copy more on every poll, ahead of the consumers, at a fill's cost each.
  readonly #scanned = new Map<string, { position: number; short: boolean }>()
  #unlisten: (() => Promise<void>) | undefined

  constructor(
    private readonly sql: Sql,
    private readonly logWatcher: LogWatcher,
    private readonly logHead: LogHead,
    private readonly upcasters: Upcasters,
    private readonly options: ConsumerGroupsOptions,
  ) {}

  // acks, nacks and replays on other instances free work too: they announce it while a poll waits (sql/0022)
  async start(): Promise<void> {
    const listening = await this.sql.listen(CHANNEL.consumerGroups, (key) => this.#changedGroup(key))
    this.#unlisten = listening.unlisten
  }

  async stop(): Promise<void> {
    await this.#unlisten?.().catch(() => undefined)
  }

  // `{"events":[…]}`: each event as every read returns it (upcast, exactly as stored) plus its delivery.
  async poll(tenant: string, name: string, max: number, waitMs: number): Promise<string> {
    const key = keyOf({ tenant, name })
    const deadline = Date.now() + waitMs
    let fresh = false
    let last: Look | undefined
    for (;;) {
      const seen: Seen = { head: this.logHead.safe, changes: this.#changes.get(key) ?? 0 }
      // the last look here (this poll's own, which found nothing, or another's) ran short and the log is past what the
      // group had copied then: fill and lease in one call
      const before = last ? { position: last.scanned, short: true } : this.#scanned.get(key)
      const fillFirst = before?.short === true && seen.head > before.position
      const look = await this.#look(tenant, name, { max, head: seen.head, fill: fillFirst, waitMs: Math.max(0, deadline - Date.now()) })
      if (look.deliveries.length > 0) {
        // more may be free (past this poll's max or page size): the next waiting poll looks
        if (this.#full(look, max)) this.#wakeOne(key)
        return this.#json(look.deliveries)
      }
      const busy = look.fill === 'busy'
      // as GET /events: what was acknowledged before the poll arrived is seen by its first look
      if (!fresh && !busy) {
        fresh = true
        if ((await this.logHead.catchUp()) > look.scanned) continue
      }
      if (Date.now() >= deadline) return '{"events":[]}'
      last = look
      await this.#wake(key, seen, look.nextDue, busy ? Date.now() + FILL_RETRY_MS : deadline)
    }
  }

  async ack(tenant: string, name: string, eventIds: string[]): Promise<AckResult> {
    const result = await ackEvents(this.sql, tenant, name, eventIds)
    if (result.acked > 0) this.#changedGroup(keyOf({ tenant, name }))
    return result
  }

  async nack(tenant: string, name: string, body: NackRequest): Promise<NackResult> {
    const group = await getGroup(this.sql, tenant, name)
    const result = await nackEvents(this.sql, group, body)
    if (result.nacked > 0) this.#changedGroup(keyOf({ tenant, name }))
    return result
  }

  async replay(tenant: string, name: string, eventIds: string[] | undefined): Promise<number> {
    const group = await getGroup(this.sql, tenant, name)
    const replayed = await replayParked(this.sql, group, eventIds)
    if (replayed > 0) this.#changedGroup(keyOf({ tenant, name }))
    return replayed
  }

  // Lease what is free; when that is short of `max` and the log has more, copy the next events in and lease again
  // (one call: the fill, then the lease). `fillFirst` goes straight to that call.
  async #look(tenant: string, name: string, look: Omit<LookOptions, 'maxBytes'>): Promise<Look> {
    const { max, head } = look
    const options = { ...look, maxBytes: this.options.maxPageBytes }
    const key = keyOf({ tenant, name })
    const looked = (found: Look, asked: number): Look => {
      this.#scanned.set(key, { position: found.scanned, short: found.deliveries.length < asked })
      // what a fill copied, this look leased as far as its max allowed: only a full look may have left some free
      if (found.fill === 'filled' && this.#full(found, asked)) this.#changedGroup(key)
      return found
    }
    const first = looked(await lookAtGroup(this.sql, tenant, name, options), max)
    if (look.fill || first.deliveries.length === max || head <= first.scanned) return first
    const rest = max - first.deliveries.length
    const more = looked(await lookAtGroup(this.sql, tenant, name, { ...options, max: rest, fill: true }), rest)
    const deliveries = [...first.deliveries, ...more.deliveries].sort((a, b) => a.event.globalPosition - b.event.globalPosition)
    return { ...more, deliveries }
  }

  // A look that leased fewer events than it asked for, and less than half a page, took everything free when it
  // looked; one that did not may have left some (another stream, past its max or the page size). Waking another
  // poll after every look had it look in vain most of the time under a steady trickle: several empty looks per
  // delivered batch, each a transaction.
  #full(look: Look, max: number): boolean {
    const bytes = look.deliveries.reduce((sum, { event }) => sum + event.data.length + (event.metadata?.length ?? 0), 0)
    return look.deliveries.length >= max || bytes * 2 >= this.options.maxPageBytes
  }

  // Resolves on the first of: the log advanced, this process changed the group or another instance announced freed
  // work (each wakes the group's first waiting poll only, see #wakeOne), `due` (the earliest lease expiry or nack
  // delay the last look saw), RECHECK_MS, `until`; at once when the head moved or the group changed since `seen`,
  // while the last look was under way (the poll is queued before that check, so nothing slips between).
  async #wake(key: string, seen: Seen, due: number | null, until: number): Promise<void> {
    let done = (): void => undefined
    const woken = new Promise<void>((resolve) => (done = resolve))
    this.#queue(key, done)
    let timer: NodeJS.Timeout | undefined
    try {
      if (this.logHead.safe > seen.head || (this.#changes.get(key) ?? 0) !== seen.changes) return
      timer = setTimeout(done, Math.max(0, Math.min(until, due ?? Infinity, Date.now() + RECHECK_MS) - Date.now()))
      await woken
    } finally {
      clearTimeout(timer)
      this.#unqueue(key, done)
    }
  }

  #queue(key: string, waiter: () => void): void {
    if (this.#waiting.size === 0) this.logWatcher.on('advance', this.#advanced)
    this.#waiting.set(key, [...(this.#waiting.get(key) ?? []), waiter])
  }

  #unqueue(key: string, waiter: () => void): void {
    const rest = (this.#waiting.get(key) ?? []).filter((queued) => queued !== waiter)
    if (rest.length > 0) this.#waiting.set(key, rest)
    else this.#waiting.delete(key)
    if (this.#waiting.size === 0) this.logWatcher.off('advance', this.#advanced)
  }

  // One waiting poll per group looks again, not all of them: it takes whatever is free, up to its max, and passes
  // the wake-up on when it got events (there may be more). Waking every poll on every append would have them
  // all race for the same few events, each costing queries (a thundering herd).
  #wakeOne(key: string): void {
    const first = this.#waiting.get(key)?.[0]
    if (first) this.#unqueue(key, first)
    first?.()
  }

  readonly #advanced = (): void => {
    for (const key of [...this.#waiting.keys()]) this.#wakeOne(key)
  }

  // This process changed the group (ack, nack, replay, fill): a waiting poll looks again.
  #changedGroup(key: string): void {
    this.#changes.set(key, (this.#changes.get(key) ?? 0) + 1)
    this.#wakeOne(key)
  }

  #json(deliveries: Delivery[]): string {
    // the event's JSON as every read makes it, with `delivery` added as its last field
    const parts = deliveries.map(({ event, attempt, deadline }) =>
      `${eventJson(event, this.upcasters).slice(0, -1)},"delivery":{"attempt":${attempt},"deadline":"${deadline}"}}`)
    return `{"events":[${parts.join(',')}]}`
  }
}
