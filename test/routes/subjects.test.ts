import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { randomUUID } from 'node:crypto'
import { buildTestApp } from '../helpers/test-app.js'
import { streamId } from '../helpers/fixtures.js'

// SPEC "Personal data and forgetting": appends with subject and personalData, every read, GET and DELETE /subjects.
const { app, db, services } = await buildTestApp(t)

const subjectId = (): string => `customer-${randomUUID().slice(0, 8)}`
const append = (id: string, body: object, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body, headers })
const personal = (subject: string, personalData: object, extra: object = {}) =>
  ({ type: 'CustomerRegistered', data: { plan: 'gold' }, subject, personalData, ...extra })
const forget = (subject: string, headers: Record<string, string> = {}) => app.inject({ method: 'DELETE', url: `/subjects/${subject}`, headers })
const status = (subject: string, headers: Record<string, string> = {}) => app.inject({ url: `/subjects/${subject}`, headers })
const streamEvents = async (id: string, headers: Record<string, string> = {}) =>
  (await app.inject({ url: `/streams/${id}/events`, headers })).json().events

// The subscription's replay of one stream, first `count` events.
const replay = async (target: FastifyInstance, id: string, count: number): Promise<any[]> => {
  const res = await target.inject({ url: `/subscribe?streamId=${id}`, headers: { accept: 'text/event-stream' }, payloadAsStream: true })
  let text = ''
  for await (const chunk of res.stream()) {
    text += String(chunk)
    if (text.split('\n\n').filter((frame) => frame.includes('data: ')).length >= count) break
  }
  services.liveFeed.closeAll()
  return text.split('\n\n').filter((frame) => frame.includes('data: ')).map((frame) => JSON.parse(frame.slice(frame.indexOf('data: ') + 6)))
}

const everyRead = async (t: Test, id: string, check: (event: any, where: string) => void) => {
  const events = await streamEvents(id)
  for (const event of events) check(event, 'stream read')
  // /events and /subscribe serve up to the gap-safe head
  await services.logWatcher.waitFor(events.at(-1).globalPosition, 5000)
  const log = (await app.inject({ url: `/events?streamId=${id}` })).json()
  t.equal(log.events.length, events.length)
  for (const event of log.events) check(event, '/events')
  for (const event of (await app.inject({ url: `/streams/${id}/load` })).json().events) check(event, 'load')
  for (const event of await replay(app, id, events.length)) check(event, '/subscribe')
  // a consumer group hands the stream's events out as every read shows them
  const group = `g-${randomUUID().slice(0, 8)}`
  t.equal((await app.inject({ method: 'PUT', url: `/consumer-groups/${group}`, payload: { source: { streamIdPrefix: id }, start: 'beginning' } })).statusCode, 201)
  const polled = (await app.inject({ method: 'POST', url: `/consumer-groups/${group}/poll?max=100&waitMs=5000` })).json().events
  t.equal(polled.length, events.length, 'the group hands out every event')
  for (const event of polled) check(event, 'consumer group')
  await app.inject({ method: 'DELETE', url: `/consumer-groups/${group}` })
}

t.test('personal data reads back on every read path, stored only encrypted', async (t) => {
  const id = streamId('customer')
  const subject = subjectId()
  const marker = `marker-${randomUUID()}`
  const res = await append(id, { events: [personal(subject, { name: marker, age: 42 }, { metadata: { source: 'web' } }), { type: 'Noted', data: { n: 1 } }] })
  t.equal(res.statusCode, 201)
  await everyRead(t, id, (event, where) => {
    if (event.type === 'Noted') {
      t.notOk('subject' in event || 'personalData' in event || 'forgotten' in event, `${where}: an event without them reads without them`)
      return
    }
    t.same(event.personalData, { name: marker, age: 42 }, where)
    t.equal(event.subject, subject, where)
    t.same(event.metadata, { source: 'web' }, where)
    t.notOk('forgotten' in event, where)
  })
  const [row] = await db.sql<{ metadata: unknown; sealed: string; subject: string }[]>`
    select metadata, encode(personal_data, 'escape') as sealed, subject from events where tenant = 'default' and stream_id = ${id} and stream_version = 1`
  t.same(row!.metadata, { source: 'web' })
  t.equal(row!.subject, subject)
  t.notMatch(row!.sealed, marker)
  t.same((await status(subject)).json(), { subject, events: 1, forgotten: false, forgottenAt: null, pending: [] })
})

t.test('DELETE /subjects/{subject} forgets: 202, every read then shows personalData null and forgotten true', async (t) => {
  const id = streamId('customer')
  const subject = subjectId()
  await append(id, { events: [personal(subject, { name: 'Ada' }), personal(subject, { name: 'Ada L.' }), { type: 'Named', data: {}, subject }] })
  const other = subjectId()
  await append(id, { events: [personal(other, { name: 'Grace' })] })
  const res = await forget(subject)
  t.equal(res.statusCode, 202)
  const body = res.json()
  t.match(body, { subject, events: 2, rebuilds: [] })
  t.ok(Date.parse(body.forgottenAt) <= Date.now())
  await everyRead(t, id, (event, where) => {
    if (event.subject === other) t.same(event.personalData, { name: 'Grace' }, `${where}: another subject is untouched`)
    else if (event.type === 'Named') t.same([event.subject, 'personalData' in event, 'forgotten' in event], [subject, false, false], where)
    else t.same([event.personalData, event.forgotten, event.data], [null, true, { plan: 'gold' }], where)
  })
  t.same((await status(subject)).json(), { subject, events: 2, forgotten: true, forgottenAt: body.forgottenAt, pending: [] })
  const [key] = await db.sql`select data_key from subject_keys where tenant = 'default' and subject = ${subject}`
  t.equal(key!.data_key, null, 'the key is gone')

  const again = await forget(subject)
  t.equal(again.statusCode, 202)
  t.same(again.json(), { subject, forgottenAt: body.forgottenAt, events: 0, rebuilds: [] }, 'a second DELETE: events 0, the first forgottenAt')
})

t.test('a subject no event named: GET is 404, DELETE is 202 with events 0 and records it forgotten', async (t) => {
  const subject = subjectId()
  const missing = await status(subject)
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), { code: 'subject-not-found', status: 404 })
  const res = await forget(subject)
  t.equal(res.statusCode, 202)
  t.match(res.json(), { subject, events: 0, rebuilds: [] })
  t.match((await status(subject)).json(), { subject, events: 0, forgotten: true, forgottenAt: res.json().forgottenAt, pending: [] })
})

t.test('personal data for a forgotten subject is 409 subject-forgotten and writes nothing; naming it still works', async (t) => {
  const id = streamId('customer')
  const subject = subjectId()
  await forget(subject)
  const refused = await append(id, { events: [{ type: 'Noted', data: {} }, personal(subject, { name: 'Ada' })] })
  t.equal(refused.statusCode, 409)
  t.match(refused.json(), { code: 'subject-forgotten', status: 409 })
  t.equal((await app.inject({ url: `/streams/${id}` })).statusCode, 404, 'nothing was written')
  const named = await append(id, { events: [{ type: 'Named', data: {}, subject }] })
  t.equal(named.statusCode, 201)
  t.same((await streamEvents(id))[0].subject, subject)
})

t.test('bad input is a 400 that changes nothing', async (t) => {
  const id = streamId('customer')
  const subject = subjectId()
  const bodies: [string, object][] = [
    ['personalData without subject', { events: [{ type: 'A', data: {}, personalData: { name: 'x' } }] }],
    ['a subject outside the pattern', { events: [personal('not ok!', { name: 'x' })] }],
    ['an empty subject', { events: [personal('', { name: 'x' })] }],
    ['a subject too long', { events: [personal('s'.repeat(257), { name: 'x' })] }],
    ['personalData not an object', { events: [personal(subject, ['x'])] }],
    ['personalData a string', { events: [{ type: 'A', data: {}, subject, personalData: 'x' }] }],
    ['personalData holding \\u0000', { events: [personal(subject, { name: 'a\u0000b' })] }],
  ]
  for (const [what, body] of bodies) {
    const res = await append(id, body)
    t.equal(res.statusCode, 400, what)
    t.equal(res.json().code, 'validation-failed', what)
  }
  t.equal((await app.inject({ url: `/streams/${id}` })).statusCode, 404, 'no stream was written')
  t.equal((await status(subject)).statusCode, 404, 'no subject was recorded')
  for (const bad of ['not%20ok', 'x'.repeat(257)]) {
    t.equal((await forget(bad)).statusCode, 400, `DELETE ${bad.slice(0, 10)}`)
    t.equal((await status(bad)).statusCode, 400, `GET ${bad.slice(0, 10)}`)
  }
  t.equal((await db.sql`select from subject_keys where forgotten_at is not null and subject like 'x%'`).length, 0)
})

t.test('metadata a client sends that opens like the server envelope is kept as metadata', async (t) => {
  const id = streamId('customer')
  const metadata = { $annalist: { subject: 'someone', personalData: 'AAAA' }, other: 1 }
  t.equal((await append(id, { events: [{ type: 'A', data: {}, metadata }] })).statusCode, 201)
  const [event] = await streamEvents(id)
  t.same(event.metadata, metadata)
  t.notOk('subject' in event)
})

t.test('a subject is per tenant', async (t) => {
  const subject = subjectId()
  const [a, b] = [streamId('customer'), streamId('customer')]
  await append(a, { events: [personal(subject, { name: 'A' })] }, { 'x-tenant-id': 'tenant-a' })
  await append(b, { events: [personal(subject, { name: 'B' })] }, { 'x-tenant-id': 'tenant-b' })
  t.match((await forget(subject, { 'x-tenant-id': 'tenant-a' })).json(), { events: 1 })
  t.same((await streamEvents(a, { 'x-tenant-id': 'tenant-a' }))[0].personalData, null)
  t.same((await streamEvents(b, { 'x-tenant-id': 'tenant-b' }))[0].personalData, { name: 'B' }, 'the other tenant keeps it')
  t.match((await status(subject, { 'x-tenant-id': 'tenant-b' })).json(), { forgotten: false, events: 1 })
  t.equal((await status(subject)).statusCode, 404, 'the default tenant never saw it')
})

t.test('upcasters apply to data only: personalData passes through an upcast read', async (t) => {
  const id = streamId('customer')
  const subject = subjectId()
  t.equal((await app.inject({ method: 'PUT', url: '/upcasters/CustomerMoved', payload: { steps: [{ from: 1, to: 2, rename: { town: 'city' } }] } })).statusCode, 201)
  await append(id, { events: [{ type: 'CustomerMoved', data: { town: 'London' }, subject, personalData: { street: '12 St James Square', town: 'kept' } }] })
  const [event] = await streamEvents(id)
  t.same(event.data, { city: 'London' })
  t.same(event.metadata, { schemaVersion: 2 })
  t.same(event.personalData, { street: '12 St James Square', town: 'kept' })
  await forget(subject)
  t.match((await streamEvents(id))[0], { data: { city: 'London' }, personalData: null, forgotten: true })
})

t.test('POST /appends seals each entry\'s personal data as a single append does', async (t) => {
  const [first, second] = [streamId('account'), streamId('account')]
  const subject = subjectId()
  const marker = `marker-${randomUUID()}`
  const res = await app.inject({
    method: 'POST',
    url: '/appends',
    payload: { appends: [{ streamId: first, events: [personal(subject, { name: marker })] }, { streamId: second, events: [{ type: 'Noted', data: { n: 1 }, subject }] }] },
  })
  t.equal(res.statusCode, 201, res.body)
  t.same((await streamEvents(first)).map((event: any) => [event.subject, event.personalData]), [[subject, { name: marker }]])
  t.same((await streamEvents(second)).map((event: any) => [event.subject, 'personalData' in event]), [[subject, false]], 'naming a subject without personal data')
  const stored = await db.sql`select 1 from events where stream_id in (${first}, ${second}) and (data::text || metadata::text) like ${'%' + marker + '%'}`
  t.equal(stored.length, 0, 'the clear text is in no stored column')
  t.equal((await forget(subject)).statusCode, 202)
  const refused = await app.inject({ method: 'POST', url: '/appends', payload: { appends: [{ streamId: streamId('account'), events: [personal(subject, { name: 'again' })] }] } })
  t.equal(refused.statusCode, 409)
  t.equal(refused.json().code, 'subject-forgotten')
})
