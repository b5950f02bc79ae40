import { EventEmitter } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { connect, type Sql } from '../../src/db/connect.js'
import { appendEvents } from '../../src/events/append.js'
import { LogHead } from '../../src/events/log-head.js'
import { Upcasters } from '../../src/events/upcasters.js'
import type { LogFilter } from '../../src/subscriptions/event-filter.js'
import { LiveFeed } from '../../src/subscriptions/live-feed.js'
import { LogWatcher } from '../../src/subscriptions/log-watcher.js'
import type { Subscription, SubscriptionSink } from '../../src/subscriptions/subscription.js'
import { testDatabase } from '../helpers/test-database.js'
import { waitFor } from '../helpers/wait-for.js'
import { terminateSessions } from '../helpers/server-sessions.js'

// The shared feed against the real log: whatever the moment a subscriber joins or leaves, however slow its socket,
// whatever connection the database drops, each one gets exactly the matching events after its cursor, in order,
// once each (SPEC "Subscribe", "The global log").
const db = await testDatabase(t)
const quiet = { info: () => {}, warn: () => {} }

// A socket that keeps everything written to it (as Node's does) and says "wait" while it is slow.
class Sink extends EventEmitter implements SubscriptionSink {
  readonly ids: number[] = []
  destroyed = false
  accepting = true
  get writableLength(): number {
    return this.accepting ? 0 : 1
  }
  write(chunk: string | Buffer): boolean {
    for (const match of String(chunk).matchAll(/^id: (\d+)$/gm)) this.ids.push(Number(match[1]))
    return this.accepting
  }
  end(): void {
    this.destroyed = true
  }
  stall(): void {
    this.accepting = false
  }
  drain(): void {
    this.accepting = true
    this.emit('drain')
  }
}

interface Row {
  globalPosition: number
  tenant: string
  streamId: string
  type: string
  correlationId: string | null
}

// What a subscriber must get, from the stored rows and the filter's plain meaning, independent of the code under test.
const expected = (rows: Row[], tenant: string, filter: LogFilter, after: number, upTo: number): number[] =>
  rows
    .filter((row) => row.tenant === tenant && row.globalPosition > after && row.globalPosition <= upTo)
    .filter((row) => filter.category === undefined || row.streamId.split('-')[0] === filter.category)
    .filter((row) => filter.types === undefined || filter.types.includes(row.type))
    .filter((row) => filter.streamId === undefined || row.streamId.startsWith(filter.streamId))
    .filter((row) => filter.correlationId === undefined || row.correlationId === filter.correlationId)
    .map((row) => row.globalPosition)

const storedRows = (sql: Sql): Promise<Row[]> => sql<Row[]>`
  select global_position as "globalPosition", tenant, stream_id as "streamId", type, metadata ->> 'correlationId' as "correlationId"
    from events
   order by global_position`

const SERVER = 'annalist-feed-test'

// The server side's idle sessions (LISTEN, reads, appends) whose latest statement matches `like`, terminated.
const terminateIdle = async (sql: Sql, like = '%'): Promise<number> => {
  const pids = (await sql<{ pid: number }[]>`
    select pid from pg_stat_activity where datname = current_database() and application_name = ${SERVER} and state = 'idle' and query ilike ${like}`).map((row) => row.pid)
  return (await terminateSessions(sql, pids)).length
}

const random = (n: number): number => Math.floor(Math.random() * n)
const pick = <T>(items: readonly T[]): T => items[random(items.length)]!

const TENANTS = ['default', 'acme'] as const
const FILTERS: LogFilter[] = [
  {},
  { category: 'cat0' },
  { types: ['A', 'C'] },
  { streamId: 'cat1-1' },
  { correlationId: 'c1' },
  { category: 'cat2', types: ['B'] },
]

interface Watched {
  tenant: string
  filter: LogFilter
  after: number
  sink: Sink
  subscription: Subscription
}

t.test('a shared read that fails is tried again: events already below the head go out without waiting for another append', async (t) => {
  let failures = 0
  // the database answers the feed's shared read with an error (a dropped connection) `failures` times
  const flaky = new Proxy(db.sql, {
    apply(target, self, args: Parameters<Sql>) {
      // the shared read is the page query whose columns fragment starts with `tenant, ` (src/events/read-log-batch.ts)
      const shared = args.slice(1).some((arg) => {
        const strings = (arg as { strings?: unknown } | undefined)?.strings
        return Array.isArray(strings) && strings.join('').startsWith('tenant, ')
      })
      if (failures > 0 && shared) {
        failures--
        return Promise.reject(new Error('connection dropped'))
      }
      return Reflect.apply(target, self, args)
    },
  })
  const logWatcher = new LogWatcher(db.sql, new LogHead(db.sql), { log: quiet })
  await logWatcher.start()
  t.teardown(() => logWatcher.stop())
  const feed = new LiveFeed(flaky, logWatcher, new Upcasters(db.sql), { log: quiet })
  const subscription = feed.open('default', { category: 'retry' }, 0, { heartbeatMs: 60_000 })
  t.teardown(() => subscription.close())
  await subscription.prime()
  const sink = new Sink()
  subscription.start(sink)
  await waitFor('the subscriber to go live', () => feed.stats().live === 1)

  failures = 2
  const { lastPosition } = await appendEvents(db.sql, 'default', 'retry-1', { events: [{ type: 'A', data: {} }] })
  logWatcher.appended()
  await waitFor('the event', () => sink.ids.includes(lastPosition), { timeoutMs: 5_000 })
  t.equal(failures, 0, 'both failed reads were tried again')
  t.same(sink.ids, [lastPosition])
  t.match(feed.stats(), { live: 1, retrying: false }, 'the subscriber stayed live')
})

// postgres.js 3.4.9, after a session was terminated while it fetched array types, answered the next query on that
// connection with empty slots ahead of its rows (test/postgres-client/terminated-during-type-fetch.test.ts). The feed
// had moved its point before handing the batch out, so the delivery that failed on the empty slot stepped over every
// event of the batch for every live subscriber.
t.test('a shared read answered with empty slots ahead of its rows skips nothing: the read is made again', async (t) => {
  let malformed = 0
  const shared = (args: unknown[]): boolean =>
    args.slice(1).some((arg) => {
      const strings = (arg as { strings?: unknown } | undefined)?.strings
      return Array.isArray(strings) && strings.join('').startsWith('tenant, ')
    })
  const holed = new Proxy(db.sql, {
    apply(target, self, args: Parameters<Sql>) {
      const answer = Reflect.apply(target, self, args) as Promise<unknown[]>
      if (malformed === 0 || !shared(args)) return answer
      malformed--
      // empty slots, as postgres.js left them (not undefined elements: map and destructuring pass over slots)
      return answer.then((rows) => {
        const holed = new Array<unknown>(2)
        holed.push(...rows)
        return holed
      })
    },
  })
  const logWatcher = new LogWatcher(db.sql, new LogHead(db.sql), { log: quiet })
  await logWatcher.start()
  t.teardown(() => logWatcher.stop())
  const feed = new LiveFeed(holed, logWatcher, new Upcasters(db.sql), { log: quiet })
  const subscription = feed.open('default', { category: 'holed' }, logWatcher.head, { heartbeatMs: 60_000 })
  t.teardown(() => subscription.close())
  await subscription.prime()
  const sink = new Sink()
  subscription.start(sink)
  await waitFor('the subscriber to go live', () => feed.stats().live === 1)

  malformed = 1
  const { firstPosition, lastPosition } = await appendEvents(db.sql, 'default', 'holed-1', { events: [{ type: 'A', data: {} }, { type: 'B', data: {} }, { type: 'C', data: {} }] })
  logWatcher.appended()
  await waitFor('the events', () => sink.ids.includes(lastPosition), { timeoutMs: 5_000 }).catch(() => undefined)
  t.equal(malformed, 0, 'the malformed answer was given')
  t.same(sink.ids, [firstPosition, firstPosition + 1, lastPosition], 'every event of the batch reached the subscriber')
})

t.test('many subscribers joining and leaving at random moments under concurrent appends, slow sockets and dropped connections each get exactly their events', async (t) => {
  // what the server would hold, on a pool of its own, so dropping its sessions leaves the test's alone
  const sql = connect(db.url, { max: 10, applicationName: SERVER })
  t.teardown(() => sql.end({ timeout: 1 }))
  const logHead = new LogHead(sql)
  const logWatcher = new LogWatcher(sql, logHead, { pollMs: 100, log: quiet })
  await logWatcher.start()
  t.teardown(() => logWatcher.stop())
  // small pages and a small queue: batch boundaries, replay paging and the fall-back all happen often
  const feed = new LiveFeed(sql, logWatcher, new Upcasters(sql), { pageSize: 7, maxBufferedEvents: 15, maxBufferedBytes: 1 << 20, log: quiet })
  t.teardown(() => feed.closeAll())
  let appending = true
  let failures = 0
  let appended = 0

  const appender = async (): Promise<void> => {
    while (appending) {
      const tenant = pick(TENANTS)
      const streamId = `cat${random(4)}-${random(20)}`
      const events = Array.from({ length: 1 + random(4) }, () => {
        const correlation = random(4)
        return { type: pick(['A', 'B', 'C']), data: { n: random(1000) }, metadata: correlation < 3 ? { correlationId: `c${correlation}` } : {} }
      })
      // a dropped connection fails an append; whether it committed or not, the rows read at the end decide
      await appendEvents(sql, tenant, streamId, { events }).then(() => {
        appended += events.length
        logWatcher.appended()
      }, () => void failures++)
    }
  }

  const open = async (tenant: string, filter: LogFilter, after: number): Promise<Watched | undefined> => {
    const subscription = feed.open(tenant, filter, after, { heartbeatMs: 60_000 })
    const primed = await subscription.prime().then(() => true, () => false)
    if (!primed) {
      subscription.close()
      return undefined
    }
    const sink = new Sink()
    subscription.start(sink)
    return { tenant, filter, after, sink, subscription }
  }

  const finished: Watched[] = []
  // joins, stays a random while (its socket stalling now and then), leaves; half of them resume from their last id
  const churner = async (): Promise<void> => {
    let resume: Omit<Watched, 'sink' | 'subscription'> | undefined
    while (appending) {
      const tenant = resume?.tenant ?? pick(TENANTS)
      const filter = resume?.filter ?? pick(FILTERS)
      const after = resume?.after ?? pick([0, logWatcher.head, Math.max(0, logWatcher.head - random(200)), logWatcher.head + random(5)])
      const watched = await open(tenant, filter, after)
      if (!watched) continue
      const until = Date.now() + random(400)
      while (Date.now() < until) {
        if (random(3) === 0) watched.sink.stall()
        await delay(random(30))
        watched.sink.drain()
        await delay(random(10))
      }
      if (random(2) === 0) watched.sink.emit('close')
      else watched.subscription.close()
      finished.push(watched)
      const last = watched.sink.ids.at(-1)
      resume = random(2) === 0 ? { tenant, filter, after: last ?? after } : undefined
    }
  }

  // some stay to the end, one per tenant and filter, and one of them reads slowly throughout
  const stayers = (await Promise.all(TENANTS.flatMap((tenant) => FILTERS.map((filter) => open(tenant, filter, 0))))).filter((w) => w !== undefined)
  const slow = stayers[0]!
  const slowReader = (async () => {
    // held stalled first until its queue of 15 overflows and the feed sends it back to replay, however slowly the
    // machine appends (it takes every event of its tenant); then stalled now and then to the end
    slow.sink.stall()
    while (appending && slow.subscription.stats().fallbacks === 0) await delay(20)
    slow.sink.drain()
    while (appending) {
      slow.sink.stall()
      await delay(40)
      slow.sink.drain()
      await delay(5)
    }
  })()

  // the database drops connections a few times: the LISTEN one, then every idle one of the server's. Only a few:
  // postgres.js backs off further on each reconnect of a connection (up to 20 s), which would only slow the test.
  let drops = 0
  const dropper = (async () => {
    for (const like of ['listen%', '%', 'listen%', '%']) {
      await delay(800)
      drops += await terminateIdle(db.sql, like)
    }
  })()

  const tasks = [...Array.from({ length: 4 }, appender), ...Array.from({ length: 8 }, churner), slowReader, dropper]
  // at least 4 s, and on a loaded machine as long as it takes to see enough of everything the assertions below count
  await delay(4_000)
  const fellBack = (): number => [...finished, ...stayers].reduce((sum, w) => sum + w.subscription.stats().fallbacks, 0)
  // (if this wait ends without them, the assertions below say which was missing)
  await waitFor('500 events, 50 subscriptions come and gone, a fall-back', () => appended > 500 && finished.length > 50 && fellBack() > 0, { timeoutMs: 60_000, intervalMs: 20 }).catch(() => undefined)
  appending = false
  await Promise.all(tasks)

  const rows = await storedRows(db.sql)
  const last = rows.at(-1)!.globalPosition
  t.ok(rows.length > 500, `${rows.length} events appended (${failures} appends failed with a dropped connection; ${drops} sessions terminated)`)
  t.ok(finished.length > 50, `${finished.length} subscriptions came and went`)
  const fallbacks = fellBack()
  t.ok(fallbacks > 0, `${fallbacks} fall-backs from the live feed to replay`)

  // One wait for all of them, so a stall is reported with the state of every part rather than ending in tap's
  // timeout. On a loaded machine catching up on thousands of events in pages of 7 takes a while: the wait lasts
  // as long as they make progress, and a stall is 15 s without a single event delivered.
  const ends = stayers.map((watched) => expected(rows, watched.tenant, watched.filter, watched.after, last).at(-1) ?? 0)
  const reached = (index: number): boolean => (stayers[index]!.sink.ids.at(-1) ?? 0) >= ends[index]!
  const delivered = (): number => stayers.reduce((sum, watched) => sum + watched.sink.ids.length, 0)
  const giveUpAt = Date.now() + 90_000
  let allReached = false
  while (!allReached && Date.now() < giveUpAt) {
    const before = delivered()
    allReached = await waitFor('every stayer to reach the end of the log', () => stayers.every((_, index) => reached(index)), { timeoutMs: 15_000 }).then(
      () => true,
      () => false,
    )
    if (delivered() === before) break
  }
  const state = allReached
    ? undefined
    : {
        feed: { ...feed.stats(), subscriptions: undefined },
        head: logWatcher.head,
        safe: logHead.safe,
        settled: logHead.settled,
        waitingFence: logHead.waitingFence?.toString(),
        sessions: await db.sql`select pid, application_name, state, backend_xid::text, wait_event, left(query, 60) as query from pg_stat_activity where datname = current_database()`,
      }
  stayers.forEach((watched, index) => {
    t.ok(reached(index), `${watched.tenant} ${JSON.stringify(watched.filter)} reached the last matching event ${ends[index]}`, {
      diagnostic: !reached(index),
      stats: watched.subscription.stats(),
      state,
    })
  })
  let checked = 0
  for (const watched of [...finished, ...stayers]) {
    const { tenant, filter, after, sink } = watched
    const upTo = stayers.includes(watched) ? last : (sink.ids.at(-1) ?? after)
    const want = expected(rows, tenant, filter, after, upTo)
    if (sink.ids.length !== want.length || sink.ids.some((id, index) => id !== want[index])) {
      const missing = want.filter((id) => !sink.ids.includes(id))
      const extra = sink.ids.filter((id, index) => !want.includes(id) || sink.ids.indexOf(id) !== index)
      t.fail(`${tenant} ${JSON.stringify(filter)} after ${after}: ${sink.ids.length} received, ${want.length} expected; missing ${missing.slice(0, 10)}, extra or repeated ${extra.slice(0, 10)}`)
    } else checked++
  }
  t.equal(checked, finished.length + stayers.length, `${checked} subscriptions got exactly their events (${stayers.length} to the end of the log)`)
})
