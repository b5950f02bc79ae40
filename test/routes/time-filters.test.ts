import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { streamId } from '../helpers/fixtures.js'

// Issue 18 point 7, SPEC "Details": times are RFC 3339 with years 1–9999, else 400 validation-failed, on /subscribe
// exactly as on /events (one parser for both: src/events/log-filter.ts).
const { app, services } = await buildTestApp(t)

const UNREADABLE = [
  '2016-12-31T23:59:60Z', // a leap second: JavaScript cannot read it, PostgreSQL reads the next minute
  '0000-01-01T00:00:00Z', // year 0: PostgreSQL refuses it
  '2023-02-29T00:00:00Z',
  '2025-01-01T10:00:00+24:00',
  '0001-01-01T00:00:00+01:00', // before year 1 once the offset is applied
  '9999-12-31T23:59:59-00:01', // after year 9999 likewise
  '2025-01-01T10:00:00',
]

// /subscribe streams on a 200: read the headers only, then let the stream go
const subscribe = async (query: string) => {
  const res = await app.inject({ url: `/subscribe?${query}`, headers: { accept: 'text/event-stream' }, payloadAsStream: true })
  let body = ''
  if (res.statusCode === 200) {
    res.stream().destroy()
    services.liveFeed.closeAll()
  } else {
    for await (const chunk of res.stream()) body += String(chunk)
  }
  return { statusCode: res.statusCode, contentType: res.headers['content-type'], body }
}

t.test('an unreadable since or until is a 400 problem on /events and on /subscribe alike', async (t) => {
  for (const time of UNREADABLE) {
    for (const name of ['since', 'until']) {
      const query = `${name}=${encodeURIComponent(time)}`
      const events = await app.inject({ url: `/events?${query}` })
      t.equal(events.statusCode, 400, `/events ${query}`)
      t.match(events.headers['content-type'], /^application\/problem\+json/)
      t.equal(events.json().code, 'validation-failed')
      const live = await subscribe(query)
      t.equal(live.statusCode, 400, `/subscribe ${query}`)
      t.match(live.contentType, /^application\/problem\+json/)
      t.equal(JSON.parse(live.body).code, 'validation-failed')
    }
  }
})

t.test('times at the ends of years 1–9999, with offsets and finer digits, are read alike by both', async (t) => {
  const id = streamId('times')
  t.equal((await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: { events: [{ type: 'Timed', data: {} }] } })).statusCode, 201)
  const [stored] = (await app.inject({ url: `/events?streamId=${id}` })).json().events
  const at = Date.parse(stored.createdAt)
  const cases: [string, number][] = [
    ['since=0001-01-01T00:00:00Z', 1],
    ['until=9999-12-31T23:59:59.999Z', 1],
    [`until=${new Date(at).toISOString().replace('Z', '9Z')}`, 1], // createdAt itself, and a fraction below the millisecond
    [`since=${new Date(at).toISOString().replace('Z', '1Z')}`, 0], // just after it
    [`until=${new Date(at - 1).toISOString().replace('Z', '999Z')}`, 0],
    [`since=${encodeURIComponent(new Date(at + 3_600_000).toISOString().replace('Z', '+01:00'))}`, 1], // createdAt, written with an offset
  ]
  for (const [query, count] of cases) {
    const res = await app.inject({ url: `/events?streamId=${id}&${query}` })
    t.equal(res.statusCode, 200, query)
    t.equal(res.json().events.length, count, query)
    t.equal((await subscribe(`streamId=${id}&${query}`)).statusCode, 200, `/subscribe ${query}`)
  }
})

t.test('stream reads and load take times by the same rule', async (t) => {
  t.equal((await app.inject({ url: `/streams/${streamId('times')}/events?until=2016-12-31T23:59:60Z` })).statusCode, 400)
  t.equal((await app.inject({ url: `/streams/${streamId('times')}/load?until=0000-01-01T00:00:00Z` })).statusCode, 400)
})
