import t from 'tap'
import { appendEvents } from '../../src/events/append.js'
import { eventTextColumns } from '../../src/events/event-columns.js'
import { eventJson, eventJsonBytes } from '../../src/events/event-json.js'
import type { EventJson } from '../../src/events/event-page-json.js'
import type { StoredEventText } from '../../src/events/read-log-text.js'
import { readStreamChunks } from '../../src/events/read-stream.js'
import { Upcasters } from '../../src/events/upcasters.js'
import { event, streamId } from '../helpers/fixtures.js'
import { testDatabase } from '../helpers/test-database.js'

// A stream read's JSON is made by the database (src/events/event-page-json.ts). It must be, byte for byte, what
// splicing or upcasting each event in the process gives (eventJson), whatever the events hold, and exactly the events
// that need the process are marked special: a type with upcasters, stored text with a line break.
const { sql } = await testDatabase(t)

const upcasters = new Upcasters(sql, { Versioned: { 1: (data) => ({ ...(data as object), upcast: true }) } })
await upcasters.start()
t.teardown(() => upcasters.stop())

const id = streamId('json')
const inputs = [
  event('Plain', { n: 1 }),
  event('Plain', { text: 'quotes " and \\ and unicode é 🎉 \u2028', nested: { __proto__: 1, constructor: [null, true] } }),
  event('Versioned', { n: 3 }),
  event('Versioned', { n: 4 }, { metadata: { schemaVersion: 2, correlationId: 'c-1' } }),
  event('Plain', { n: 5 }),
  event('Plain', { n: 6 }),
  event('Plain', { n: 7 }, { metadata: { causationId: 'x' } }),
  event('Plain', { n: 8 }),
  event('Versioned', { n: 9 }),
  event('Versioned', { n: 10 }),
]
await appendEvents(sql, 'default', id, { events: inputs })
// what only a hand-written row or an exact client holds: line breaks between tokens, numbers a double cannot keep
await sql`update events set data = ${'{"a":\n1,\r\n"b":[2]}'}::text::json where stream_id = ${id} and stream_version = 5`
await sql`update events set metadata = ${'{\n"schemaVersion": 1}'}::text::json where stream_id = ${id} and stream_version = 10`
await sql`update events set data = ${'{"big":123456789012345678901234567890,"long":0.10000000000000000001,"one":1.0}'}::text::json where stream_id = ${id} and stream_version in (6, 9)`

const stored = await sql<StoredEventText[]>`select ${eventTextColumns(sql)} from events where stream_id = ${id} order by stream_version`
const expected = (versions: number[]): string => versions.map((version) => eventJson(stored[version - 1]!, upcasters)).join(',')
const written = (part: string | Buffer): string => (typeof part === 'string' ? part : part.toString('utf8'))

const drain = async (query: { limit?: number; maxBytes?: number; direction?: 'forward' | 'backward'; from?: number }, chunkBytes: number) => {
  const { page } = await readStreamChunks(sql, 'default', id, query, chunkBytes, upcasters.types())
  const events: EventJson[] = []
  for (let chunk = await page.next(); chunk !== null; chunk = await page.next()) events.push(...chunk)
  return { events, page }
}

t.test('every page, whole or in chunks, is exactly the events spliced or upcast one by one', async (t) => {
  let cases = 0
  for (const direction of ['forward', 'backward'] as const) {
    for (const limit of [1, 2, 3, 10, 100]) {
      for (const chunkBytes of [1, 300, 1_000_000]) {
        const { events, page } = await drain({ direction, limit }, chunkBytes)
        const json = events.map((e) => written(eventJsonBytes(e, upcasters))).join(',')
        const versions = (JSON.parse(`[${json}]`) as { streamVersion: number }[]).map((e) => e.streamVersion)
        const first = direction === 'forward' ? 1 : 10
        const wanted = Array.from({ length: Math.min(limit, 10) }, (_, i) => (direction === 'forward' ? first + i : first - i))
        if (JSON.stringify(versions) !== JSON.stringify(wanted)) t.fail(`versions ${versions} for ${direction} ${limit} in chunks of ${chunkBytes}`)
        if (json !== expected(wanted)) t.fail(`JSON differs for ${direction} ${limit} in chunks of ${chunkBytes}`, { json, expected: expected(wanted) })
        if (page.count !== wanted.length) t.fail(`count ${page.count} for ${wanted.length} events`)
        cases += 1
      }
    }
  }
  t.pass(`${cases} pages alike`)
})

t.test('the events the process must see are marked, and only those', async (t) => {
  const { events } = await drain({ limit: 100 }, 1_000_000)
  t.same(events.map((e) => e.key), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  t.same(events.map((e) => e.special), [false, false, true, true, true, false, false, false, true, true], 'upcast types (3, 4, 9, 10) and a line break (5)')
  const upcast = JSON.parse(written(eventJsonBytes(events[2]!, upcasters))) as { data: Record<string, unknown>; metadata: Record<string, unknown> }
  t.same(upcast.data, { n: 3, upcast: true }, 'an upcaster still applies')
  t.equal(upcast.metadata.schemaVersion, 2)
  t.match(written(eventJsonBytes(events[5]!, upcasters)), /"big":123456789012345678901234567890,"long":0.10000000000000000001,"one":1.0/, 'numbers kept as stored')
  t.notOk(/[\r\n]/.test(written(eventJsonBytes(events[4]!, upcasters))), 'a line break is re-encoded away')
})

t.test('a type that gets no upcaster is spliced by the database', async (t) => {
  const plain = new Upcasters(sql)
  const { page } = await readStreamChunks(sql, 'default', id, { limit: 100 }, 1_000_000, plain.types())
  const all = (await page.next()) ?? []
  t.same(all.filter((e) => e.special).map((e) => e.key), [5, 10], 'only the line breaks (5, 10) need the process')
  t.equal(all.map((e) => written(eventJsonBytes(e, plain))).join(','), stored.map((e) => eventJson(e, plain)).join(','))
})

t.test('a read with no special event is one element the database joined, keyed and counted as its last event', async (t) => {
  const plainId = streamId('json')
  await appendEvents(sql, 'default', plainId, { events: Array.from({ length: 5 }, (_, n) => event('Plain', { n })) })
  for (const direction of ['forward', 'backward'] as const) {
    const { page } = await readStreamChunks(sql, 'default', plainId, { direction, limit: 4 }, 1_000_000, upcasters.types())
    const read = (await page.next()) ?? []
    t.equal(read.length, 1, `${direction}: one element`)
    t.equal(page.count, 4)
    t.equal(read[0]!.key, direction === 'forward' ? 4 : 2, 'keyed as the last event')
    t.equal(page.following, direction === 'forward' ? 5 : 1)
    const rows = await sql<StoredEventText[]>`select ${eventTextColumns(sql)} from events where stream_id = ${plainId} order by stream_version ${direction === 'forward' ? sql`asc` : sql`desc`} limit 4`
    t.equal(read[0]!.json.toString('utf8'), rows.map((e) => eventJson(e, upcasters)).join(','), 'the events spliced one by one, comma-separated')
  }
})
