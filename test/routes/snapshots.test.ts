import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { event, events, streamId } from '../helpers/fixtures.js'

const { app, db } = await buildTestApp(t, { SNAPSHOT_KEEP: '3', SNAPSHOT_EVERY: '3' })

const append = (id: string, body: object, tenant?: string) =>
  app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body, headers: tenant ? { 'x-tenant-id': tenant } : {} })
const put = (id: string, version: number | string, body: object, tenant?: string) =>
  app.inject({ method: 'PUT', url: `/streams/${id}/snapshots/${version}`, payload: body, headers: tenant ? { 'x-tenant-id': tenant } : {} })
const get = (url: string, tenant?: string) => app.inject({ url, headers: tenant ? { 'x-tenant-id': tenant } : {} })
const versions = (list: { version: number }[]): number[] => list.map((item) => item.version)

t.test('PUT /streams/{streamId}/snapshots/{version}', async (t) => {
  t.test('a stream with no events, or a version above the current one, is 409 conflict', async (t) => {
    const id = streamId()
    const none = await put(id, 1, { state: {} })
    t.equal(none.statusCode, 409)
    t.match(none.json(), { code: 'conflict', currentVersion: 0 })
    await append(id, { events: events(2) })
    const above = await put(id, 3, { state: {} })
    t.equal(above.statusCode, 409)
    t.match(above.headers['content-type'], /^application\/problem\+json/)
    t.match(above.json(), { code: 'conflict', status: 409, streamId: id, version: 3, currentVersion: 2 })
    t.equal((await get(`/streams/${id}/snapshots`)).json().snapshots.length, 0, 'nothing was stored')
  })

  t.test('201 new, 200 when the version is replaced; it reads back as stored', async (t) => {
    const id = streamId()
    await append(id, { events: events(2) })
    const created = await put(id, 2, { state: { total: 10 }, schemaVersion: 2 })
    t.equal(created.statusCode, 201)
    t.match(created.json(), { streamId: id, version: 2, state: { total: 10 }, schemaVersion: 2, createdAt: String })
    const replaced = await put(id, 2, { state: { total: 11 } })
    t.equal(replaced.statusCode, 200)
    t.match(replaced.json(), { version: 2, state: { total: 11 }, schemaVersion: 1 })
    t.same((await get(`/streams/${id}/snapshots/latest`)).json(), replaced.json())
    const nullState = await put(id, 1, { state: null })
    t.equal(nullState.statusCode, 201)
    t.equal(nullState.json().state, null, 'any JSON value is a state, null included')
  })

  t.test('bad input is a 400 that stores nothing', async (t) => {
    const id = streamId()
    await append(id, { events: events(2) })
    const bodies: [string, number | string, object][] = [
      ['version 0', 0, { state: {} }],
      ['a version that is not a number', 'x', { state: {} }],
      ['no state', 1, {}],
      ['an unknown field', 1, { state: {}, extra: 1 }],
      ['schemaVersion 0', 1, { state: {}, schemaVersion: 0 }],
      ['schemaVersion as text', 1, { state: {}, schemaVersion: '2' }],
    ]
    for (const [name, version, body] of bodies) {
      const res = await put(id, version, body)
      t.equal(res.statusCode, 400, name)
      t.equal(res.json().code, 'validation-failed', name)
    }
    t.equal((await put('a%20b', 1, { state: {} })).statusCode, 400, 'a bad stream id')
    t.same((await get(`/streams/${id}/snapshots`)).json(), { snapshots: [] })
  })
})

t.test('only the newest SNAPSHOT_KEEP (highest versions) are kept', async (t) => {
  const id = streamId()
  await append(id, { events: events(6) })
  for (const version of [1, 2, 3, 4, 5]) t.equal((await put(id, version, { state: { version } })).statusCode, 201)
  t.same(versions((await get(`/streams/${id}/snapshots`)).json().snapshots), [5, 4, 3], 'newest first, three kept')
  t.equal((await put(id, 2, { state: {} })).statusCode, 201, 'an older version is accepted ...')
  t.same(versions((await get(`/streams/${id}/snapshots`)).json().snapshots), [5, 4, 3], '... but is not among the newest, so it is not kept')
  await put(id, 6, { state: { version: 6 } })
  t.same(versions((await get(`/streams/${id}/snapshots`)).json().snapshots), [6, 5, 4])
  const [row] = await db.sql<{ count: number }[]>`select count(*)::int as count from stream_snapshots where stream_id = ${id}`
  t.equal(row!.count, 3, 'the database holds no more than that')
})

t.test('GET …/snapshots/latest?atOrBefore= finds the closest one at or before', async (t) => {
  const id = streamId()
  await append(id, { events: events(9) })
  for (const version of [3, 6, 9]) await put(id, version, { state: { version } })
  t.equal((await get(`/streams/${id}/snapshots/latest`)).json().version, 9)
  t.equal((await get(`/streams/${id}/snapshots/latest?atOrBefore=8`)).json().version, 6)
  t.equal((await get(`/streams/${id}/snapshots/latest?atOrBefore=6`)).json().version, 6)
  const before = await get(`/streams/${id}/snapshots/latest?atOrBefore=2`)
  t.equal(before.statusCode, 404)
  t.match(before.json(), { code: 'snapshot-not-found', streamId: id })
  t.equal((await get(`/streams/${id}/snapshots/latest?atOrBefore=0`)).statusCode, 400)
  const other = streamId()
  await append(other, { events: events(1) })
  t.equal((await get(`/streams/${other}/snapshots/latest`)).json().code, 'snapshot-not-found')
  t.equal((await get(`/streams/${streamId()}/snapshots/latest`)).json().code, 'snapshot-not-found')
})

t.test('GET …/snapshots of a stream with no events is 404 stream-not-found; with events and none, an empty list', async (t) => {
  const missing = await get(`/streams/${streamId()}/snapshots`)
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'stream-not-found')
  const id = streamId()
  await append(id, { events: events(1) })
  t.same((await get(`/streams/${id}/snapshots`)).json(), { snapshots: [] })
})

t.test('GET /streams/{streamId} summarises the newest snapshot', async (t) => {
  const id = streamId()
  await append(id, { events: events(4) })
  t.equal((await get(`/streams/${id}`)).json().snapshot, null)
  await put(id, 2, { state: { a: 1 } })
  const stored = (await put(id, 4, { state: { a: 2 }, schemaVersion: 3 })).json()
  await put(id, 3, { state: { a: 3 } })
  t.same((await get(`/streams/${id}`)).json().snapshot, { version: 4, schemaVersion: 3, createdAt: stored.createdAt })
})

t.test('snapshots belong to their tenant; system streams are global', async (t) => {
  const id = streamId()
  await append(id, { events: events(2) }, 'acme')
  t.equal((await put(id, 2, { state: { owner: 'acme' } }, 'acme')).statusCode, 201)
  t.equal((await put(id, 1, { state: {} })).statusCode, 409, 'the default tenant has no such stream')
  t.equal((await get(`/streams/${id}/snapshots/latest`, 'globex')).statusCode, 404)
  t.equal((await get(`/streams/${id}/load`, 'globex')).statusCode, 404)
  t.same((await get(`/streams/${id}/load`, 'acme')).json().snapshot.state, { owner: 'acme' })
  await append(id, { events: events(1) }, 'globex')
  t.equal((await get(`/streams/${id}/load`, 'globex')).json().snapshot, null, 'the same id in another tenant is another stream')
  const system = `$snap-${streamId()}`
  await append(system, { events: events(1) }, 'acme')
  t.equal((await put(system, 1, { state: { shared: true } }, 'acme')).statusCode, 201)
  t.same((await get(`/streams/${system}/snapshots/latest`, 'globex')).json().state, { shared: true })
})
