import { EventEmitter } from 'node:events'
import t from 'tap'
import type { StoredEvent } from '../../src/events/schemas.js'
import type { LogFilter } from '../../src/subscriptions/event-filter.js'
import { sseFrame } from '../../src/subscriptions/sse-frame.js'
import { Subscription, type Feed, type FeedItem, type ReplayPage } from '../../src/subscriptions/subscription.js'
import { waitFor } from '../helpers/wait-for.js'

// The subscription's state machine on a fake feed and socket: hand-over, pacing, fall-back and release.
const stored = (position: number, type = 'OrderPlaced'): StoredEvent => ({
  globalPosition: position,
  streamId: 'order-1',
  streamVersion: position,
  eventId: '7d444840-9dc0-11d1-b245-5ffdce74fad2',
  type,
  data: {},
  metadata: {},
  createdAt: '2025-03-01T10:15:30.123Z',
})
const item = (position: number, type?: string): FeedItem => {
  const event = stored(position, type)
  return { tenant: 'default', event, frame: sseFrame(event) }
}

class FakeSink extends EventEmitter {
  accepting = true
  destroyed = false
  ended = false
  written: string[] = []
  get writableLength(): number {
    return this.accepting ? 0 : 1
  }
  chunks: (string | Buffer)[] = []
  write(chunk: string | Buffer): boolean {
    this.chunks.push(chunk)
    this.written.push(String(chunk))
    return this.accepting
  }
  end(): void {
    this.ended = true
  }
  drain(): void {
    this.accepting = true
    this.emit('drain')
  }
  get ids(): number[] {
    return [...this.written.join('').matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]))
  }
}

class FakeFeed implements Feed {
  position = 0
  live = new Set<Subscription>()
  detached = false
  reads: [number, number][] = []
  log: number[] = []
  async readPage(_tenant: string, _filter: LogFilter, after: number, head: number): Promise<ReplayPage> {
    this.reads.push([after, head])
    const events = this.log.filter((position) => position > after && position <= head).slice(0, 2)
    const full = events.length === 2 && events[1]! < head
    return { chunk: events.map((p) => sseFrame(stored(p))).join(''), count: events.length, readTo: full ? events[1]! : head }
  }
  join(subscription: Subscription): void {
    this.live.add(subscription)
  }
  leave(subscription: Subscription): void {
    this.live.delete(subscription)
  }
  detach(subscription: Subscription): void {
    this.detached = true
    this.live.delete(subscription)
  }
}

const limits = { heartbeatMs: 60_000, maxBufferedEvents: 3, maxBufferedBytes: 1 << 20 }
const setup = async (after: number, log: number[], position: number) => {
  const feed = new FakeFeed()
  feed.log = log
  feed.position = position
  const sink = new FakeSink()
  const subscription = new Subscription(feed, 'default', {}, after, limits)
  await subscription.prime()
  subscription.start(sink)
  t.teardown(() => subscription.close())
  return { feed, sink, subscription }
}

t.test('replays page by page up to the feed’s live point, then joins it', async (t) => {
  const { feed, sink, subscription } = await setup(1, [1, 2, 3, 4, 5], 5)
  await waitFor('the hand-over', () => feed.live.has(subscription))
  t.same(sink.ids, [2, 3, 4, 5], 'from after the cursor, in order')
  t.same(feed.reads, [[1, 5], [3, 5]], 'pages follow readTo, bounded by the live point; the last one reached it')
  subscription.deliver([item(4), item(5), item(6), item(7, 'Other')], 7)
  t.same(sink.ids, [2, 3, 4, 5, 6, 7], 'live: nothing at or below the cursor again, the rest in order')
  t.match(subscription.stats(), { mode: 'live', cursor: 7, delivered: 6 })
})

t.test('a socket that stops taking data stops the replay: nothing is read ahead of what it has not taken', async (t) => {
  const feed = new FakeFeed()
  feed.log = [1, 2, 3, 4, 5, 6, 7, 8]
  feed.position = 8
  const sink = new FakeSink()
  sink.accepting = false
  const subscription = new Subscription(feed, 'default', {}, 0, limits)
  await subscription.prime()
  subscription.start(sink)
  t.teardown(() => subscription.close())
  const settle = async (): Promise<void> => {
    for (let turn = 0; turn < 10; turn++) await new Promise(setImmediate)
  }
  await settle()
  t.same(feed.reads, [[0, 8]], 'only the page the socket was given has been read')
  t.same(sink.ids, [1, 2])
  sink.drain()
  sink.accepting = false
  await waitFor('the next page', () => sink.ids.length === 4)
  await settle()
  t.same(feed.reads, [[0, 8], [2, 8]], 'one drain, one more page')
  sink.drain()
  await waitFor('the hand-over', () => feed.live.has(subscription))
  t.same(sink.ids, [1, 2, 3, 4, 5, 6, 7, 8], 'a socket that keeps up gets the rest, in order')
})

t.test('a cursor ahead of the feed joins at once and drops what it already has', async (t) => {
  const { feed, sink, subscription } = await setup(10, [], 4)
  await waitFor('the hand-over', () => feed.live.has(subscription))
  subscription.deliver([item(9), item(10), item(11)], 11)
  t.same(sink.ids, [11])
})

t.test('a backed-up socket queues up to the bound, then the subscription replays from what it wrote', async (t) => {
  const { feed, sink, subscription } = await setup(0, [], 0)
  await waitFor('the hand-over', () => feed.live.has(subscription))
  sink.accepting = false
  subscription.deliver([item(1)], 1)
  t.same(sink.ids, [1], 'written; the socket now says wait')
  subscription.deliver([item(2), item(3)], 3)
  t.match(subscription.stats(), { mode: 'live', bufferedEvents: 2, cursor: 1 })
  subscription.deliver([item(4), item(5)], 5)
  t.match(subscription.stats(), { mode: 'replaying', bufferedEvents: 0, cursor: 1, fallbacks: 1 }, 'past 3 queued events it left the feed')
  t.notOk(feed.live.has(subscription))
  feed.log = [1, 2, 3, 4, 5]
  feed.position = 5
  t.same(feed.reads.length, 1, 'no read while the socket is full')
  sink.drain()
  await waitFor('the rejoin', () => feed.live.has(subscription))
  t.same(sink.ids, [1, 2, 3, 4, 5], 'replayed from the last written event: no gap, no repeat')
})

t.test('a drained socket gets the queue in one write', async (t) => {
  const { feed, sink, subscription } = await setup(0, [], 0)
  await waitFor('the hand-over', () => feed.live.has(subscription))
  sink.accepting = false
  subscription.deliver([item(1)], 1)
  subscription.deliver([item(2)], 2)
  subscription.deliver([item(3, 'Other')], 4)
  const writes = sink.written.length
  sink.drain()
  t.equal(sink.written.length, writes + 1)
  t.same(sink.ids, [1, 2, 3])
  t.match(subscription.stats(), { mode: 'live', cursor: 4, bufferedEvents: 0 })
})

t.test('close releases the feed and the socket, once', async (t) => {
  const { feed, sink, subscription } = await setup(0, [], 0)
  await waitFor('the hand-over', () => feed.live.has(subscription))
  sink.emit('close')
  t.ok(subscription.closed)
  t.ok(feed.detached)
  t.equal(sink.listenerCount('close') + sink.listenerCount('drain'), 0, 'no listener left on the socket')
  t.ok(sink.ended)
  subscription.deliver([item(1)], 1)
  t.same(sink.ids, [], 'nothing is written after close')
})

t.test('a replay read that fails is tried again; one that keeps failing ends the stream', async (t) => {
  const { feed, sink, subscription } = await setup(0, [1, 2, 3, 4, 5], 5)
  await waitFor('the hand-over', () => feed.live.has(subscription))
  sink.accepting = false
  for (const position of [6, 7, 8, 9, 10]) subscription.deliver([item(position)], position)
  t.match(subscription.stats(), { mode: 'replaying', cursor: 6 }, 'past the queue bound it left the feed')
  feed.log.push(6, 7, 8, 9, 10)
  feed.position = 10
  const read = feed.readPage.bind(feed)
  let failed = 0
  feed.readPage = (...args) => (failed < 2 ? (failed++, Promise.reject(new Error('connection dropped'))) : read(...args))
  sink.drain()
  await waitFor('the rejoin', () => feed.live.has(subscription))
  t.equal(failed, 2, 'two reads failed')
  t.same(sink.ids, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'and were tried again: no gap')

  const errors: unknown[] = []
  const broken = new Subscription(feed, 'default', {}, 0, { ...limits, onError: (error) => errors.push(error) })
  await broken.prime()
  feed.readPage = () => Promise.reject(new Error('database gone'))
  const brokenSink = new FakeSink()
  broken.start(brokenSink)
  await waitFor('the stream to end', () => broken.closed, { timeoutMs: 5_000 })
  t.equal(errors.length, 1, 'reported once')
  t.ok(brokenSink.ended)
})

t.test('subscribers with the same tenant and filter share one encoded chunk of a batch; one whose cursor is inside it picks its own', async (t) => {
  const a = await setup(0, [], 0)
  const b = await setup(0, [], 0)
  const c = await setup(3, [], 0)
  const other = await setup(0, [], 0)
  await waitFor('the hand-overs', () => [a, b, c, other].every(({ feed, subscription }) => feed.live.has(subscription)))
  // `other` wants another tenant: same filter, different key
  const items = [item(2), item(3), item(4, 'Other'), item(5)]
  const cache = new Map()
  for (const { subscription } of [a, b, c]) subscription.deliver(items, 5, cache)
  t.same(a.sink.ids, [2, 3, 4, 5])
  t.same(b.sink.ids, [2, 3, 4, 5])
  t.equal(a.sink.chunks[0], b.sink.chunks[0], 'the very same bytes')
  t.same(c.sink.ids, [4, 5], 'nothing at or below its cursor')
  t.not(c.sink.chunks[0], a.sink.chunks[0])
  const acme = new Subscription(other.feed, 'acme', {}, 0, limits)
  await acme.prime()
  const sink = new FakeSink()
  acme.start(sink)
  t.teardown(() => acme.close())
  await waitFor('the hand-over', () => other.feed.live.has(acme))
  acme.deliver(items, 5, cache)
  t.same(sink.ids, [], 'another tenant’s subscriber gets none of them')
})
