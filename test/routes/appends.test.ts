import { randomUUID } from 'node:crypto'
import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { event, events, streamId, withId } from '../helpers/fixtures.js'

interface Run {
  streamId: string
  firstVersion: number
  lastVersion: number
  firstPosition: number
  lastPosition: number
}

const KEYS = { read: 'read-key-acme-2b1f', write: 'write-key-acme-9c4e', admin: 'admin-key-acme-77d0' }
const { app } = await buildTestApp(t, { API_KEYS: `${KEYS.read}:acme:read,${KEYS.write}:acme:write,${KEYS.admin}:acme:admin` })
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const WRITE = bearer(KEYS.write)

const post = (body: unknown, headers: Record<string, string> = WRITE) =>
  app.inject({ method: 'POST', url: '/appends', payload: body as object, headers })
const postText = (text: string, headers: Record<string, string> = WRITE) =>
  app.inject({ method: 'POST', url: '/appends', payload: text, headers: { 'content-type': 'application/json', ...headers } })

// a stream's version as its tenant sees it, 0 when it has no events
const versionOf = async (id: string, headers: Record<string, string> = WRITE): Promise<number> => {
  const res = await app.inject({ url: `/streams/${id}`, headers })
  return res.statusCode === 404 ? 0 : (res.json().version as number)
}

const read = async (id: string, headers: Record<string, string> = WRITE) =>
  (await app.inject({ url: `/streams/${id}/events`, headers })).json().events as { eventId: string; streamVersion: number; globalPosition: number; type: string; data: unknown }[]

t.test('201 answers every entry in request order, positions increasing in request order, all in one commit', async (t) => {
  const [from, to, audit] = [streamId('account'), streamId('account'), streamId('audit')]
  await post({ appends: [{ streamId: from, events: [event('Opened')] }] })
  const res = await post({
    appends: [
      { streamId: to, expectedVersion: 'no_stream', events: [event('Credited', { amount: 5 })] },
      { streamId: from, expectedVersion: 1, events: [event('Debited', { amount: 5 }), event('Noted')] },
      { streamId: audit, events: [event('TransferRecorded')] },
    ],
  })
  t.equal(res.statusCode, 201, res.body)
  const { appends } = res.json() as { appends: Run[] }
  t.notOk('duplicate' in res.json())
  t.match(appends, [
    { streamId: to, firstVersion: 1, lastVersion: 1 },
    { streamId: from, firstVersion: 2, lastVersion: 3 },
    { streamId: audit, firstVersion: 1, lastVersion: 1 },
  ])
  const positions = appends.flatMap((run) => [run.firstPosition, run.lastPosition])
  t.same(positions, [...positions].sort((a, b) => a - b), 'positions increase in request order')
  t.equal(appends[1]!.lastPosition - appends[1]!.firstPosition, 1)
  const stored = await read(from)
  t.same(stored.map((e) => [e.streamVersion, e.type, e.globalPosition]), [
    [1, 'Opened', stored[0]!.globalPosition],
    [2, 'Debited', appends[1]!.firstPosition],
    [3, 'Noted', appends[1]!.lastPosition],
  ])
  const log = (await app.inject({ url: `/events?after=${appends[0]!.firstPosition - 1}&limit=10`, headers: WRITE })).json().events as { streamId: string }[]
  t.same(log.map((e) => e.streamId), [to, from, from, audit], 'the log holds the request in its order')
})

t.test('409 wrong-expected-version names every failing entry and writes nothing', async (t) => {
  const [a, b, c] = [streamId(), streamId(), streamId()]
  await post({ appends: [{ streamId: a, events: events(2) }, { streamId: b, events: events(1) }] })
  const res = await post({
    appends: [
      { streamId: a, expectedVersion: 1, events: events(1) },
      { streamId: c, expectedVersion: 'no_stream', events: events(1) },
      { streamId: b, expectedVersion: 'no_stream', events: events(1) },
      { streamId: streamId(), expectedVersion: 'exists', events: events(1) },
    ],
  })
  t.equal(res.statusCode, 409)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  const body = res.json()
  t.match(body, { code: 'wrong-expected-version', status: 409 })
  t.same(body.conflicts.slice(0, 2), [
    { streamId: a, expectedVersion: 1, currentVersion: 2 },
    { streamId: b, expectedVersion: 'no_stream', currentVersion: 1 },
  ], 'expectedVersion echoed as sent')
  t.match(body.conflicts[2], { expectedVersion: 'exists', currentVersion: 0 })
  t.equal(body.conflicts.length, 3, 'the entry whose expectation held is not named')
  t.same([await versionOf(a), await versionOf(b), await versionOf(c)], [2, 1, 0], 'nothing was written, no stream created')
})

t.test('idempotent retries over the whole request: 200 with the original results, or 409 duplicate-event-id', async (t) => {
  const [a, b] = [streamId(), streamId()]
  const request = {
    appends: [
      { streamId: a, expectedVersion: 'no_stream', events: [withId(event()), withId(event())] },
      { streamId: b, expectedVersion: 'no_stream', events: [withId(event())] },
    ],
  }
  const first = await post(request)
  t.equal(first.statusCode, 201)
  await post({ appends: [{ streamId: a, events: events(1) }] })
  const again = await post(request)
  t.equal(again.statusCode, 200, 'whatever expectedVersion says now')
  t.same(again.json(), { ...first.json(), duplicate: true })
  const [[x, y], [z]] = request.appends.map((entry) => entry.events)
  const refused = [
    ['another entry order', { appends: [request.appends[1], request.appends[0]] }],
    ['a new event beside the stored ones', { appends: [...request.appends, { streamId: streamId(), events: [withId(event())] }] }],
    ['an event without an id beside them', { appends: [{ streamId: a, events: [x, y, event()] }, request.appends[1]] }],
    ['the ids in another stream', { appends: [{ streamId: b, events: [x, y] }, { streamId: a, events: [z] }] }],
  ] as const
  for (const [name, body] of refused) {
    const res = await post(body)
    t.equal(res.statusCode, 409, name)
    t.equal(res.json().code, 'duplicate-event-id', name)
  }
  t.same([await versionOf(a), await versionOf(b)], [3, 1], 'none of them wrote anything')
  const part = await post({ appends: [{ streamId: a, events: [y] }, request.appends[1]] })
  t.equal(part.statusCode, 200, 'a stored part of a run is a retry of that part, as for a single append')
  t.same(part.json().appends[0], { ...first.json().appends[0], firstVersion: 2, firstPosition: first.json().appends[0].lastPosition })
  const otherTenant = await post(request, { ...bearer(KEYS.admin), 'x-tenant-id': 'beta' })
  t.equal(otherTenant.statusCode, 201, 'event ids are unique per tenant: another tenant may use them')
})

t.test('the same request sent many times at once is written once; every copy answers the original result', async (t) => {
  const request = { appends: [{ streamId: streamId(), events: [withId(event())] }, { streamId: streamId(), events: [withId(event()), withId(event())] }] }
  const answers = await Promise.all(Array.from({ length: 8 }, () => post(request)))
  const codes = answers.map((res) => res.statusCode).sort()
  t.same(codes, [200, 200, 200, 200, 200, 200, 200, 201])
  const original = answers.find((res) => res.statusCode === 201)!.json()
  for (const res of answers.filter((res) => res.statusCode === 200)) t.same(res.json(), { ...original, duplicate: true })
  t.same([await versionOf(request.appends[0]!.streamId), await versionOf(request.appends[1]!.streamId)], [1, 2])
})

t.test('data and metadata are stored exactly as sent', async (t) => {
  const data = '{"big":12345678901234567890123,"dec":0.1000000000000000000000001,"__proto__":{"x":1}}'
  const metadata = '{"n":1.50,"correlationId":"c-9"}'
  const [a, b] = [streamId(), streamId()]
  const res = await postText(`{"appends":[{"streamId":"${a}","events":[{"type":"A","data" : ${data}}]},{"streamId":"${b}","events":[{"type":"B","data":1},{"type":"C","data":${data},"metadata":${metadata}}]}]}`)
  t.equal(res.statusCode, 201, res.body)
  t.ok((await app.inject({ url: `/streams/${a}/events`, headers: WRITE })).body.includes(`"data":${data},"metadata":{}`))
  t.ok((await app.inject({ url: `/streams/${b}/events`, headers: WRITE })).body.includes(`"data":${data},"metadata":${metadata}`))
})

t.test('bad input is a 400 problem that changes nothing', async (t) => {
  const id = streamId('bad')
  const entry = (extra: object = {}) => ({ streamId: id, events: events(1), ...extra })
  const sharedId = randomUUID()
  const cases: [string, unknown][] = [
    ['no entries', { appends: [] }],
    ['no appends field', {}],
    ['101 entries', { appends: Array.from({ length: 101 }, (_, i) => ({ streamId: `${id}-${i}`, events: events(1) })) }],
    ['a stream twice', { appends: [entry(), entry()] }],
    ['an eventId in two entries', { appends: [entry({ events: [event('A', {}, { eventId: sharedId })] }), { streamId: `${id}-2`, events: [event('A', {}, { eventId: sharedId })] }] }],
    ['an eventId twice in one entry', { appends: [entry({ events: [event('A', {}, { eventId: sharedId }), event('A', {}, { eventId: sharedId })] })] }],
    ['more than MAX_EVENTS_PER_APPEND events in all', { appends: [entry({ events: events(600) }), { streamId: `${id}-2`, events: events(401) }] }],
    ['more than MAX_EVENTS_PER_APPEND in one entry', { appends: [entry({ events: events(1001) })] }],
    ['an entry without events', { appends: [entry({ events: [] })] }],
    ['an entry without streamId', { appends: [{ events: events(1) }] }],
    ['a bad streamId', { appends: [entry({ streamId: 'has space' })] }],
    ['a streamId over 256 characters', { appends: [entry({ streamId: 'a'.repeat(257) })] }],
    ['unknown top-level field', { appends: [entry()], expectedVersion: 1 }],
    ['unknown entry field', { appends: [entry({ extra: 1 })] }],
    ['unknown event field', { appends: [entry({ events: [{ ...event(), foo: 1 }] })] }],
    ['negative expectedVersion', { appends: [entry({ expectedVersion: -1 })] }],
    ['string expectedVersion', { appends: [entry({ expectedVersion: '1' })] }],
    ['bad eventId', { appends: [entry({ events: [event('A', {}, { eventId: 'nope' })] })] }],
    ['bad event type', { appends: [entry({ events: [event('has space')] })] }],
    ['NUL in data', { appends: [entry({ events: [event('A', { s: 'a\u0000' })] })] }],
    ['unpaired surrogate in metadata', { appends: [entry({ events: [event('A', {}, { metadata: { s: 'x\ud800' } })] })] }],
    ['appends not an array', { appends: { streamId: id } }],
  ]
  for (const [name, body] of cases) {
    const res = await post(body)
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().code, 'validation-failed', name)
  }
  t.equal((await postText('{"appends":[')).statusCode, 400, 'malformed JSON')
  const tooDeep = `{"appends":[{"streamId":"${id}","events":[{"type":"A","data":${'['.repeat(513)}${']'.repeat(513)}}]}]}`
  t.equal((await postText(tooDeep)).json().code, 'validation-failed', 'data nested past 512 levels')
  const text = await app.inject({ method: 'POST', url: '/appends', payload: 'hi', headers: { ...WRITE, 'content-type': 'text/plain' } })
  t.equal(text.statusCode, 415)
  const big = await post({ appends: [entry({ events: [event('A', { s: 'x'.repeat(1024 * 1024) })] })] })
  t.equal(big.statusCode, 413)
  t.equal(big.json().code, 'payload-too-large')
  const listed = (await app.inject({ url: '/streams?prefix=bad', headers: WRITE })).json()
  t.same(listed.streams, [], 'no stream was created')
})

t.test('roles, tenancy and system streams are those of a single append', async (t) => {
  const id = streamId()
  const body = { appends: [{ streamId: id, events: events(1) }] }
  t.equal((await post(body, {})).statusCode, 401, 'no key')
  t.match(await post(body, bearer(KEYS.read)), { statusCode: 403, body: /"code":"forbidden"/ }, 'read may not append')
  t.equal((await post(body, { ...WRITE, 'x-tenant-id': 'beta' })).statusCode, 403, 'write may not act for another tenant')
  t.equal((await post(body, { ...WRITE, 'x-tenant-id': 'Bad Tenant' })).statusCode, 400)
  t.equal((await post(body)).statusCode, 201)
  t.equal((await post(body, { ...bearer(KEYS.admin), 'x-tenant-id': 'beta' })).statusCode, 201)
  t.equal(await versionOf(id), 1, 'acme has its stream')
  t.equal(await versionOf(id, { ...bearer(KEYS.admin), 'x-tenant-id': 'beta' }), 1, 'beta has its own')

  const system = `$audit-${randomUUID().slice(0, 8)}`
  const mixed = { appends: [{ streamId: streamId(), events: events(1) }, { streamId: system, events: events(1) }] }
  const refused = await post(mixed)
  t.equal(refused.statusCode, 403, 'a system stream in the body needs admin')
  t.equal(refused.json().code, 'forbidden')
  t.equal(await versionOf(mixed.appends[0]!.streamId), 0, 'and nothing of the request is written')
  const admitted = await post(mixed, { ...bearer(KEYS.admin), 'x-tenant-id': 'beta' })
  t.equal(admitted.statusCode, 201)
  t.equal(await versionOf(system, bearer(KEYS.admin)), 1, 'system streams are global: another tenant reads it')
  t.equal(await versionOf(mixed.appends[0]!.streamId, bearer(KEYS.admin)), 0, 'the ordinary stream is the acting tenant\'s')
})

t.test('a request counts once in annalist_appends_total and every event of it in annalist_events_appended_total', async (t) => {
  const metric = async (name: string): Promise<number> => {
    const text = (await app.inject({ url: '/metrics', headers: bearer(KEYS.admin) })).body
    return Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  }
  const names = ['annalist_appends_total{outcome="created"}', 'annalist_appends_total{outcome="duplicate"}', 'annalist_events_appended_total']
  const before = await Promise.all(names.map(metric))
  const request = { appends: [{ streamId: streamId(), events: [withId(event()), withId(event())] }, { streamId: streamId(), events: [withId(event())] }] }
  t.equal((await post(request)).statusCode, 201)
  t.equal((await post(request)).statusCode, 200)
  const after = await Promise.all(names.map(metric))
  t.same(after.map((value, index) => value - before[index]!), [1, 1, 3])
})
