import { randomUUID } from 'node:crypto'
import t from 'tap'
import { appendBatchStats } from '../../src/events/append-batcher.js'
import { buildTestApp } from '../helpers/test-app.js'
import { event, events, streamId } from '../helpers/fixtures.js'

t.test('POST /streams/{streamId}/events', async (t) => {
  const { app, db } = await buildTestApp(t)
  const append = (id: string, body: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body as object, headers })

  t.test('201 with versions and positions', async (t) => {
    const id = streamId()
    const res = await append(id, { expectedVersion: 'no_stream', events: events(2) })
    t.equal(res.statusCode, 201)
    t.match(res.json(), { streamId: id, firstVersion: 1, lastVersion: 2, firstPosition: Number, lastPosition: Number })
    t.notOk('duplicate' in res.json())
  })

  t.test('409 wrong-expected-version echoes what was sent and the current version', async (t) => {
    const id = streamId()
    await append(id, { events: events(1) })
    for (const expectedVersion of [0, 5, 'no_stream']) {
      const res = await append(id, { expectedVersion, events: events(1) })
      t.equal(res.statusCode, 409)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.match(res.json(), { code: 'wrong-expected-version', status: 409, expectedVersion, currentVersion: 1 })
    }
  })

  t.test('a retry answers 200 duplicate with the original result', async (t) => {
    const id = streamId()
    const body = { expectedVersion: 0, events: [event('A', {}, { eventId: randomUUID() })] }
    const first = await append(id, body)
    const again = await append(id, body)
    t.equal(again.statusCode, 200)
    t.same(again.json(), { ...first.json(), duplicate: true })
    const partial = await append(id, { events: [body.events[0], event('B', {}, { eventId: randomUUID() })] })
    t.equal(partial.statusCode, 409)
    t.equal(partial.json().code, 'duplicate-event-id')
  })

  t.test('20+ racing appenders with one expectedVersion: one 201, the rest 409', async (t) => {
    const id = streamId()
    await append(id, { events: events(1) })
    const responses = await Promise.all(
      Array.from({ length: 24 }, (_, client) => append(id, { expectedVersion: 1, events: [event('Raced', { client }), event('Raced', { client })] })),
    )
    const codes = responses.map((r) => r.statusCode).sort()
    t.same(codes, [201, ...Array(23).fill(409)])
    const winner = responses.find((r) => r.statusCode === 201)!
    const read = await app.inject({ url: `/streams/${id}/events` })
    const stored = read.json().events
    t.same(stored.map((e: { streamVersion: number }) => e.streamVersion), [1, 2, 3])
    const winnerClient = JSON.parse(winner.payload).firstVersion === 2 ? stored[1].data.client : -1
    t.same(stored.slice(1).map((e: { data: { client: number } }) => e.data.client), [winnerClient, winnerClient], 'the stream holds only the winner’s events')
  })

  t.test('racing appenders on one stream, batched: every 201 is stored as answered, versions stay contiguous, every 409 is true', async (t) => {
    const id = streamId()
    const before = appendBatchStats(db.sql)
    const acks: { ids: string[]; body: { firstVersion: number; lastVersion: number; firstPosition: number; lastPosition: number } }[] = []
    const refused: { ids: string[]; expectedVersion: number; currentVersion: number }[] = []
    // each client appends with the version it last saw and learns the current one from a 409
    const client = async (index: number) => {
      let known = 0
      for (let step = 0; step < 12; step++) {
        const ids = Array.from({ length: 1 + ((index + step) % 3) }, () => randomUUID())
        const res = await append(id, { expectedVersion: known, events: ids.map((eventId) => event('Raced', { index, step }, { eventId })) })
        if (res.statusCode === 201) {
          acks.push({ ids, body: res.json() })
          known = res.json().lastVersion
        } else {
          t.equal(res.statusCode, 409, res.payload)
          refused.push({ ids, expectedVersion: known, currentVersion: res.json().currentVersion })
          known = res.json().currentVersion
        }
      }
    }
    await Promise.all(Array.from({ length: 16 }, (_, index) => client(index)))
    const after = appendBatchStats(db.sql)
    t.ok(after.appends - before.appends > after.batches - before.batches, `appends shared batches (${after.appends - before.appends} appends in ${after.batches - before.batches} batches)`)
    t.ok(acks.length > 0 && refused.length > 0, `${acks.length} appends written, ${refused.length} refused`)

    const stored = (await app.inject({ url: `/streams/${id}/events?limit=1000` })).json().events as { eventId: string; streamVersion: number; globalPosition: number }[]
    t.same(stored.map((e) => e.streamVersion), Array.from({ length: stored.length }, (_, i) => i + 1), 'versions contiguous from 1')
    const positions = stored.map((e) => e.globalPosition)
    t.same(positions, [...positions].sort((a, b) => a - b), 'positions grow with versions')
    const byId = new Map(stored.map((e) => [e.eventId, e]))
    const mismatches = acks.filter(({ ids, body }) => ids.some((eventId, offset) => {
      const row = byId.get(eventId)
      return row?.streamVersion !== body.firstVersion + offset ||
        (offset === 0 && row.globalPosition !== body.firstPosition) ||
        (offset === ids.length - 1 && row.globalPosition !== body.lastPosition)
    }))
    t.same(mismatches, [], 'every 201 is stored at the versions and positions it answered')
    t.equal(byId.size, acks.reduce((sum, ack) => sum + ack.ids.length, 0), 'and nothing else is stored')
    t.same(refused.filter((r) => r.currentVersion === r.expectedVersion || r.ids.some((eventId) => byId.has(eventId))), [], 'every 409 named another version and wrote nothing')
  })

  t.test('bad input is a 400 problem that changes nothing', async (t) => {
    const id = streamId()
    const cases: [string, unknown][] = [
      ['no events', { events: [] }],
      ['unknown field', { events: events(1), extra: true }],
      ['unknown event field', { events: [{ ...event(), foo: 1 }] }],
      ['bad type', { events: [event('has space')] }],
      ['numeric type', { events: [{ type: 5, data: {} }] }],
      ['negative expectedVersion', { expectedVersion: -1, events: events(1) }],
      ['string expectedVersion', { expectedVersion: '3', events: events(1) }],
      ['bad eventId', { events: [event('A', {}, { eventId: 'not-a-uuid' })] }],
      ['same id twice', { events: [event('A', {}, { eventId: 'f2d4b8e1-0000-4000-8000-000000000001' }), event('A', {}, { eventId: 'f2d4b8e1-0000-4000-8000-000000000001' })] }],
      ['metadata not an object', { events: [{ ...event(), metadata: [1] }] }],
      ['NUL in data', { events: [event('A', { s: 'a\u0000' })] }],
      ['NUL in a metadata key', { events: [event('A', {}, { metadata: { 'k\u0000': 1 } })] }],
      ['unpaired surrogate', { events: [event('A', { s: 'x\ud800y' })] }],
      ['too many events', { events: events(1001) }],
    ]
    for (const [name, body] of cases) {
      const res = await append(id, body)
      t.equal(res.statusCode, 400, name)
      t.equal(res.json().code, 'validation-failed', name)
    }
    const badId = await append('has%20space', { events: events(1) })
    t.equal(badId.statusCode, 400, 'bad stream id')
    const tooLong = await append('a'.repeat(257), { events: events(1) })
    t.equal(tooLong.statusCode, 400, 'stream id over 256 chars')
    t.equal((await app.inject({ url: `/streams/${id}` })).statusCode, 404, 'nothing was written')
  })

  t.test('body parsing errors are problems: 400 malformed, 415 not JSON', async (t) => {
    const malformed = await app.inject({ method: 'POST', url: '/streams/x/events', payload: '{nope', headers: { 'content-type': 'application/json' } })
    t.equal(malformed.statusCode, 400)
    t.equal(malformed.json().code, 'validation-failed')
    const text = await app.inject({ method: 'POST', url: '/streams/x/events', payload: 'hi', headers: { 'content-type': 'text/plain' } })
    t.equal(text.statusCode, 415)
    t.equal(text.json().code, 'unsupported-media-type')
  })
})

t.test('GET /streams/{streamId}/events', async (t) => {
  const { app } = await buildTestApp(t)
  const id = streamId()
  await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: { events: events(25) } })
  const read = async (query: string) => (await app.inject({ url: `/streams/${id}/events${query}` })).json()

  t.test('forward paging through next visits every version once', async (t) => {
    const versions: number[] = []
    let from: number | null = 1
    for (let pages = 0; from !== null && pages < 10; pages++) {
      const page = await read(`?from=${from}&limit=10`)
      t.equal(page.version, 25)
      versions.push(...page.events.map((e: { streamVersion: number }) => e.streamVersion))
      from = page.next
    }
    t.same(versions, Array.from({ length: 25 }, (_, i) => i + 1))
  })

  t.test('backward from the latest, paging down', async (t) => {
    const first = await read('?direction=backward&limit=10')
    t.same(first.events.map((e: { streamVersion: number }) => e.streamVersion), [25, 24, 23, 22, 21, 20, 19, 18, 17, 16])
    t.equal(first.next, 15)
    const last = await read('?direction=backward&from=5&limit=10')
    t.same(last.events.map((e: { streamVersion: number }) => e.streamVersion), [5, 4, 3, 2, 1])
    t.equal(last.next, null)
  })

  // a whole page made by the database is written as the buffers it is (page-body.ts), its length given beforehand
  t.test('a whole page has its exact length, for GET and HEAD alike', async (t) => {
    for (const query of ['?limit=10', '?from=26', '?direction=backward&limit=3']) {
      const get = await app.inject({ url: `/streams/${id}/events${query}` })
      t.equal(get.headers['content-length'], String(get.rawPayload.length), `GET ${query}`)
      t.equal(get.headers['transfer-encoding'], undefined)
      t.match(get.headers['content-type'], /^application\/json; charset=utf-8/)
      t.equal(JSON.stringify(JSON.parse(get.body)), get.body, `${query}: one line of JSON`)
      const head = await app.inject({ method: 'HEAD', url: `/streams/${id}/events${query}` })
      t.equal(head.headers['content-length'], get.headers['content-length'], `HEAD ${query}`)
      t.equal(head.rawPayload.length, 0)
    }
  })

  t.test('default limit is 100; from past the end is empty with next null', async (t) => {
    t.equal((await read('')).events.length, 25)
    t.same(await read('?from=26'), { streamId: id, version: 25, events: [], next: null })
  })

  t.test('limit outside 1..1000 is a 400', async (t) => {
    for (const query of ['?limit=0', '?limit=1001', '?limit=x', '?direction=up', '?until=yesterday']) {
      const res = await app.inject({ url: `/streams/${id}/events${query}` })
      t.equal(res.statusCode, 400, query)
    }
  })

  t.test('a stream without events is 404 stream-not-found', async (t) => {
    const res = await app.inject({ url: `/streams/${streamId()}/events` })
    t.equal(res.statusCode, 404)
    t.equal(res.json().code, 'stream-not-found')
  })

  t.test('until returns the stream as it was then', async (t) => {
    const temporal = streamId()
    await app.inject({ method: 'POST', url: `/streams/${temporal}/events`, payload: { events: events(2) } })
    const [then] = (await (await app.inject({ url: `/streams/${temporal}/events` })).json()).events.slice(-1)
    // a later append whose createdAt is strictly after `then`
    let later
    for (let attempt = 0; attempt < 50; attempt++) {
      later = (await app.inject({ method: 'POST', url: `/streams/${temporal}/events`, payload: { events: events(1) } })).json()
      const last = (await app.inject({ url: `/streams/${temporal}/events?from=${later.lastVersion}` })).json().events[0]
      if (last.createdAt > then.createdAt) break
    }
    const asOf = (await app.inject({ url: `/streams/${temporal}/events?until=${encodeURIComponent(then.createdAt)}` })).json()
    t.equal(asOf.version, 2)
    t.same(asOf.events.map((e: { streamVersion: number }) => e.streamVersion), [1, 2])
    const before = await app.inject({ url: `/streams/${temporal}/events?until=2000-01-01T00:00:00Z` })
    t.equal(before.statusCode, 404, 'a stream that did not exist yet is 404')
  })
})

t.test('GET /streams/{streamId} and GET /streams', async (t) => {
  const { app } = await buildTestApp(t)
  for (const id of ['order-1', 'order-2', 'order-3', 'customer-1', 'solo']) {
    await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: { events: events(id === 'order-2' ? 3 : 1) } })
  }

  t.test('one stream: category, version, timestamps', async (t) => {
    const res = await app.inject({ url: '/streams/order-2' })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { streamId: 'order-2', category: 'order', version: 3, createdAt: String, updatedAt: String, snapshot: null })
    t.equal((await app.inject({ url: '/streams/solo' })).json().category, 'solo')
    t.equal((await app.inject({ url: '/streams/nope-1' })).json().code, 'stream-not-found')
  })

  t.test('list by category and prefix, paging with next', async (t) => {
    const ids = async (query: string) => (await app.inject({ url: `/streams${query}` })).json()
    t.same((await ids('?category=order')).streams.map((s: { streamId: string }) => s.streamId), ['order-1', 'order-2', 'order-3'])
    t.same((await ids('?prefix=cust')).streams.map((s: { streamId: string }) => s.streamId), ['customer-1'])
    const first = await ids('?limit=2')
    t.same(first.streams.map((s: { streamId: string }) => s.streamId), ['customer-1', 'order-1'])
    t.equal(first.next, 'order-1')
    const rest = await ids(`?limit=10&after=${first.next}`)
    t.same(rest.streams.map((s: { streamId: string }) => s.streamId), ['order-2', 'order-3', 'solo'])
    t.equal(rest.next, null)
  })
})
