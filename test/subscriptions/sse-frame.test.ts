import t from 'tap'
import { appendEvents } from '../../src/events/append.js'
import { LogHead } from '../../src/events/log-head.js'
import { readLog } from '../../src/events/read-log.js'
import { readLogText } from '../../src/events/read-log-text.js'
import { sseFrame, sseFrameFromText } from '../../src/subscriptions/sse-frame.js'
import { event } from '../helpers/fixtures.js'
import { testDatabase } from '../helpers/test-database.js'

// The replay frames events from their stored JSON text; the result must be exactly what framing the parsed event gives.
const { sql } = await testDatabase(t)

const datas: unknown[] = [
  { total: 189.48, items: [{ sku: 'A', qty: 2 }], nested: { deep: { deeper: [1, 'two', null, true] } } },
  null,
  0,
  'a string with "quotes", a \\ backslash, a\nnewline and a tab\t',
  { unicode: 'naïve café – 東京 🚀', escaped: '\u2028\u2029', empty: {}, list: [] },
  [1, 2, 3],
  { big: 12345678901234567000, small: 1e-7, negative: -0.5 },
]
await appendEvents(sql, 'default', 'order-1', { events: datas.map((data, index) => event('OrderPlaced', data, { metadata: { correlationId: `c-${index}`, n: index } })) })
await appendEvents(sql, 'default', '$system-1', { events: [event('ProjectionStarted', { projection: 'x' })] })
// JSON written to the database by hand may hold line breaks: it is re-encoded onto one line
await sql`update events set data = '{\n  "pretty": true\n}'::json where stream_version = 2 and stream_id = 'order-1'`
const head = await new LogHead(sql).catchUp(5000)

for (const [tenant, query] of [['default', {}], ['other', { streamId: '$' }]] as const) {
  t.test(`frames from text equal frames from parsed events (${tenant} ${JSON.stringify(query)})`, async (t) => {
    const parsed = (await readLog(sql, tenant, head, { ...query, limit: 100 })).events
    const text = (await readLogText(sql, tenant, head, { ...query, limit: 100 })).events
    t.ok(parsed.length > 0)
    t.same(text.map(sseFrameFromText), parsed.map(sseFrame))
    for (const frame of text.map(sseFrameFromText)) t.equal(frame.split('\n').length, 5, 'id, event, data, and the blank line')
  })
}

t.test('paging matches readLog', async (t) => {
  const parsed = await readLog(sql, 'default', head, { limit: 3, after: 0 })
  const text = await readLogText(sql, 'default', head, { limit: 3, after: 0 })
  t.equal(text.next, parsed.next)
  t.not(text.next, null)
})
