import t from 'tap'
import { appendEvents } from '../../src/events/append.js'
import type { ChunkedPage } from '../../src/events/chunked-page.js'
import { nextAfter } from '../../src/events/read-log.js'
import { readLogChunks, readLogText } from '../../src/events/read-log-text.js'
import type { EventJson } from '../../src/events/event-page-json.js'
import { readStream, readStreamChunks } from '../../src/events/read-stream.js'
import { event, streamId } from '../helpers/fixtures.js'
import { testDatabase } from '../helpers/test-database.js'

// A page read as chunks (src/events/chunked-page.ts) must be exactly the page one read makes: the same events, the
// same next, whatever the limit, the byte budget, the start and the sizes of the events around the cuts.
const CHUNK_BYTES = 1000
const { sql } = await testDatabase(t)

const a = streamId('chunk')
const b = streamId('chunk')
// sizes around, below and above the chunk and the budgets below, interleaved over two streams
const SIZES = [10, 400, 900, 1500, 3000, 50, 700, 980, 20, 2200, 600, 600, 600, 5, 4000, 300, 300, 300, 300, 1200]
for (let n = 0; n < 60; n++) {
  await appendEvents(sql, 'default', n % 3 === 2 ? b : a, { events: [event('Sized', { n, pad: 'x'.repeat(SIZES[n % SIZES.length]!) })] })
}
const [{ head }] = await sql<{ head: number }[]>`select max(global_position)::int8 as head from events`

const drain = async <E>(page: ChunkedPage<E>): Promise<E[]> => {
  const events: E[] = []
  for (let chunk = await page.next(); chunk !== null; chunk = await page.next()) events.push(...chunk)
  return events
}

// A stream page's events as the database spelled them (event-page-json.ts), parsed.
const runEvents = (events: EventJson[]): { streamVersion: number; globalPosition: number; data: unknown }[] =>
  JSON.parse(`[${events.map((e) => e.json.toString('utf8')).join(',')}]`) as { streamVersion: number; globalPosition: number; data: unknown }[]

const LIMITS = [1, 3, 7, 1000]
const BUDGETS = [500, 2500, 6000, 100_000]

t.test('a log page read as chunks is the page read at once, for every limit, budget, start and filter', async (t) => {
  const first = await sql<{ p: number }[]>`select min(global_position)::int8 as p from events`
  const starts = [0, first[0]!.p + 4, first[0]!.p + 17]
  let chunked = 0
  let cases = 0
  for (const filter of [{}, { streamId: a }]) {
    for (const after of starts) {
      for (const limit of LIMITS) {
        for (const maxBytes of BUDGETS) {
          const query = { ...filter, after, limit, maxBytes }
          const once = await readLogText(sql, 'default', head, query)
          const page = await readLogChunks(sql, 'default', head, query, CHUNK_BYTES)
          if (maxBytes <= CHUNK_BYTES && !page.whole) t.fail(`a budget within one chunk is one read: ${JSON.stringify(query)}`)
          if (!page.whole) chunked += 1
          const events = await drain(page)
          const same = JSON.stringify(events) === JSON.stringify(once.events) && nextAfter(page.anchor, page.following) === once.next && page.anchor === events.at(-1)?.globalPosition
          if (!same) t.fail(`chunks differ from one read: ${JSON.stringify(query)}`, { once: once.events.map((e) => e.globalPosition), chunks: events.map((e) => e.globalPosition) })
          cases += 1
        }
      }
    }
  }
  t.pass(`${cases} pages alike`)
  t.ok(chunked >= 20, `${chunked} of them took more than one read`)
})

t.test('a stream page read as chunks is the page read at once, forward and backward', async (t) => {
  let chunked = 0
  let cases = 0
  for (const direction of ['forward', 'backward'] as const) {
    for (const from of [undefined, 3, 30]) {
      for (const limit of LIMITS) {
        for (const maxBytes of BUDGETS) {
          const query = { direction, from, limit, maxBytes }
          const once = await readStream(sql, 'default', a, query)
          const { version, page } = await readStreamChunks(sql, 'default', a, query, CHUNK_BYTES)
          if (!page.whole) chunked += 1
          const events = runEvents(await drain(page))
          const same =
            version === once.version &&
            JSON.stringify(events.map((e) => [e.streamVersion, e.globalPosition, e.data])) === JSON.stringify(once.events.map((e) => [e.streamVersion, e.globalPosition, e.data])) &&
            page.following === once.next
          if (!same) t.fail(`chunks differ from one read: ${JSON.stringify(query)}`, { once: once.events.map((e) => e.streamVersion), chunks: events.map((e) => e.streamVersion) })
          cases += 1
        }
      }
    }
  }
  t.pass(`${cases} pages alike`)
  t.ok(chunked >= 10, `${chunked} of them took more than one read`)
})

t.test('the chunks of a stream page stay within the version its first read found', async (t) => {
  const { version, page } = await readStreamChunks(sql, 'default', b, { limit: 1000, maxBytes: 100_000 }, CHUNK_BYTES)
  t.notOk(page.whole, 'the page takes several reads')
  const read = [...((await page.next()) ?? [])]
  await appendEvents(sql, 'default', b, { events: [event('Sized', { n: 'late', pad: '' })] })
  read.push(...(await drain(page)))
  const events = runEvents(read)
  t.same(events.map((e) => e.streamVersion), Array.from({ length: version }, (_, i) => i + 1), 'every version up to the one found, once, and not the one appended meanwhile')
  t.equal(page.following, null)
})
