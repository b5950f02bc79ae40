import t from 'tap'
import { randomUUID } from 'node:crypto'
import { buildTestApp } from '../../helpers/test-app.js'
import { caughtUp, systemEvents } from '../../helpers/projection-api.js'
import { clear, expectedCounts, liveCounts, liveRows, ticks, TICKS } from '../../helpers/snapshot-counter.js'
import { waitFor } from '../../helpers/wait-for.js'

const { app, db } = await buildTestApp(t)
const { sql } = db

const post = (url: string) => app.inject({ method: 'POST', url })
const snapshot = async (name: string) => {
  const res = await post(`/projections/${name}/snapshots`)
  if (res.statusCode !== 201) throw new Error(`snapshot: ${res.statusCode} ${res.body}`)
  return res.json()
}

t.test('a restore puts back the snapshot’s documents and position; the projection then catches up, each event once', async (t) => {
  t.equal((await app.inject({ method: 'PUT', url: '/projections/counter', payload: TICKS })).statusCode, 201)
  await ticks(app, 'a', 3)
  await ticks(app, 'b', 2)
  await ticks(app, 'c', 1)
  await clear(app, 'c')
  await ticks(app, 'a', 2, 'acme')
  const before = await caughtUp(app, 'counter')

  const taken = await snapshot('counter')
  t.match(taken, { id: /^[0-9a-f-]{36}$/, position: before.position, documents: 3, reason: 'manual', generation: 1, definitionVersion: 1 })
  t.ok(Date.parse(taken.createdAt) > 0, 'createdAt is a timestamp')
  const atSnapshot = await liveRows(sql, 'counter')
  t.same(atSnapshot.map((row) => `${row.tenant}/${row.id}`), ['acme/a', 'default/a', 'default/b', 'default/c'], 'the tombstone of c is part of it')

  await ticks(app, 'a', 2)
  await ticks(app, 'c', 1)
  await ticks(app, 'd', 1)
  await clear(app, 'b')
  await ticks(app, 'a', 1, 'acme')
  await ticks(app, 'e', 1, 'acme')
  await caughtUp(app, 'counter')
  t.same(await liveCounts(sql, 'counter'), await expectedCounts(sql))

  t.equal((await post('/projections/counter/stop')).statusCode, 200)
  const restored = await post(`/projections/counter/snapshots/${taken.id}/restore`)
  t.equal(restored.statusCode, 200)
  t.match(restored.json(), { name: 'counter', status: 'stopped', position: taken.position, documents: 3 })
  t.same(await liveRows(sql, 'counter'), atSnapshot, 'every row, tombstones, versions and updatedAt as in the snapshot')

  t.equal((await post('/projections/counter/start')).statusCode, 200)
  await caughtUp(app, 'counter')
  const expected = await expectedCounts(sql)
  t.same(expected, { 'default/a': 5, 'default/c': 1, 'default/d': 1, 'acme/a': 3, 'acme/e': 1 })
  t.same(await liveCounts(sql, 'counter'), expected, 'the events after the snapshot applied again, exactly once')

  // the same while the projection runs
  const second = await snapshot('counter')
  await ticks(app, 'a', 4)
  await clear(app, 'd')
  await caughtUp(app, 'counter')
  const running = await post(`/projections/counter/snapshots/${second.id}/restore`)
  t.equal(running.statusCode, 200)
  t.ok(running.json().position >= second.position, 'answers once the restore took effect')
  await caughtUp(app, 'counter')
  t.same(await liveCounts(sql, 'counter'), await expectedCounts(sql), 'caught up exactly after a restore under a running worker')
})

t.test('restores while 4 readers fetch a known document: no failed or empty read, no empty projection', async (t) => {
  t.equal((await app.inject({ method: 'PUT', url: '/projections/busy', payload: TICKS })).statusCode, 201)
  await ticks(app, 'known', 5)
  for (let chunk = 0; chunk < 3; chunk++) {
    const res = await app.inject({
      method: 'POST',
      url: `/streams/tick-many-${chunk}/events`,
      payload: { events: Array.from({ length: 1000 }, (_, i) => ({ type: 'Tick', data: { bucket: `b${chunk}-${i}` } })) },
    })
    t.equal(res.statusCode, 201)
  }
  await caughtUp(app, 'busy')
  const first = await snapshot('busy')
  const atFirst = Object.keys(await expectedCounts(sql))
  t.equal(first.documents, atFirst.length, 'every tenant counted')
  // the query reads the default tenant's documents; the fewest there are is at the first snapshot
  const fewest = atFirst.filter((key) => key.startsWith('default/')).length
  t.ok(fewest > 3000)
  await ticks(app, 'known', 5)
  await ticks(app, 'late', 3)
  await caughtUp(app, 'busy')
  const second = await snapshot('busy')

  let reading = true
  const failures: string[] = []
  let reads = 0
  const reader = async (): Promise<void> => {
    while (reading) {
      const res = await app.inject({ url: '/projections/busy/documents/known' })
      reads += 1
      if (res.statusCode !== 200 || !(res.json().document.count >= 5)) failures.push(`${res.statusCode} ${res.body.slice(0, 200)}`)
    }
  }
  const counter = async (): Promise<void> => {
    while (reading) {
      const res = await app.inject({ method: 'POST', url: '/projections/busy/query', payload: { limit: 1, count: true } })
      if (res.statusCode !== 200 || res.json().count < fewest) failures.push(`count ${res.statusCode} ${res.body.slice(0, 200)}`)
    }
  }
  const readers = [reader(), reader(), reader(), reader(), counter()]
  for (let round = 0; round < 6; round++) {
    const target = round % 2 === 0 ? first : second
    const res = await post(`/projections/busy/snapshots/${target.id}/restore`)
    t.equal(res.statusCode, 200, `restore ${round + 1}`)
    await ticks(app, 'known', 1)
  }
  await waitFor('more reads after the last restore', () => reads > 50)
  reading = false
  await Promise.all(readers)
  t.same(failures, [], `${reads} document reads, none failed or empty`)
  await caughtUp(app, 'busy')
  const expected = await expectedCounts(sql)
  t.same(await liveCounts(sql, 'busy'), expected, 'caught up exactly')
  t.equal(expected['default/known'], 16)
})

t.test('refused restores change nothing: unknown projection or snapshot, bad ids, a backfill under way, another definition', async (t) => {
  const SOLO = { ...TICKS, source: { categories: ['solo'] } }
  t.equal((await app.inject({ method: 'PUT', url: '/projections/strict', payload: SOLO })).statusCode, 201)
  await ticks(app, 'x', 2, 'default', 'solo')
  await caughtUp(app, 'strict')
  const taken = await snapshot('strict')
  const other = await snapshot('counter')

  t.match((await post('/projections/nope/snapshots')).json(), { status: 404, code: 'projection-not-found' })
  t.match((await app.inject({ url: '/projections/nope/snapshots' })).json(), { status: 404, code: 'projection-not-found' })
  t.match((await post(`/projections/nope/snapshots/${taken.id}/restore`)).json(), { status: 404, code: 'projection-not-found' })
  t.match((await post(`/projections/strict/snapshots/${randomUUID()}/restore`)).json(), { status: 404, code: 'snapshot-not-found', name: 'strict' })
  t.match((await post(`/projections/strict/snapshots/${other.id}/restore`)).json(), { status: 404, code: 'snapshot-not-found' }, 'another projection’s snapshot')
  t.match((await post('/projections/strict/snapshots/not-a-uuid/restore')).json(), { status: 400, code: 'validation-failed' })
  t.match((await post('/projections/Bad!/snapshots')).json(), { status: 400, code: 'validation-failed' })

  await ticks(app, 'x', 1, 'default', 'solo')
  await caughtUp(app, 'strict')
  const backfill = randomUUID()
  await sql`
    insert into projection_backfills (id, projection, status, request, atomic, generation, after_position)
    values (${backfill}, 'strict', 'running', '{}', false, 1, 0)`
  const busy = await post(`/projections/strict/snapshots/${taken.id}/restore`)
  t.match(busy.json(), { status: 409, code: 'backfill-in-progress', backfillId: backfill })
  await sql`update projection_backfills set status = 'completed' where id = ${backfill}`
  t.same(await liveCounts(sql, 'strict'), { 'default/x': 3 }, 'nothing restored')

  const redefined = { ...SOLO, handlers: { ...SOLO.handlers, Tick: { inc: { count: 2 } } } }
  t.equal((await app.inject({ method: 'PUT', url: '/projections/strict', payload: redefined })).statusCode, 200)
  await waitFor('the new definition live', async () => (await liveCounts(sql, 'strict'))['default/x'] === 6)
  const refused = await post(`/projections/strict/snapshots/${taken.id}/restore`)
  t.match(refused.json(), { status: 409, code: 'conflict', snapshotDefinitionVersion: 1, definitionVersion: 2 })
  t.same(await liveCounts(sql, 'strict'), { 'default/x': 6 }, 'nothing restored')

  t.equal((await post('/projections/strict/stop')).statusCode, 200)
  const now = await snapshot('strict')
  await sql`
    insert into projection_generations (projection, generation, definition, definition_version, state)
    select projection, generation + 1, definition, definition_version, 'building'
      from projection_generations where projection = 'strict' and state = 'live'`
  t.match((await post(`/projections/strict/snapshots/${now.id}/restore`)).json(), { status: 409, code: 'conflict', detail: /rebuilding/ })
})

t.test('a snapshot taken while the worker commits batches holds exactly the documents at its position', async (t) => {
  t.equal((await app.inject({ method: 'PUT', url: '/projections/racing', payload: TICKS })).statusCode, 201)
  let appending = true
  const appender = (async () => {
    for (let round = 0; appending && round < 10_000; round++) {
      await app.inject({
        method: 'POST',
        url: `/streams/tick-race-${round % 7}/events`,
        payload: { events: Array.from({ length: 20 }, (_, i) => (i === 19 && round % 5 === 0 ? { type: 'Cleared', data: { bucket: `r${round % 11}` } } : { type: 'Tick', data: { bucket: `r${(round + i) % 11}` } })) },
      })
    }
  })()
  const taken = []
  for (let round = 0; round < 30; round++) taken.push(await snapshot('racing'))
  appending = false
  await appender
  const positions = new Set(taken.map((s) => s.position))
  t.ok(positions.size > 10, `snapshots at ${positions.size} different positions while the worker ran`)
  for (const { id, position, documents } of taken) {
    const rows = await sql<{ key: string; count: number }[]>`
      select tenant || '/' || id as key, (document ->> 'count')::int as count
        from projection_snapshot_documents
       where snapshot = ${id} and document is not null`
    const copied = Object.fromEntries(rows.map((row) => [row.key, row.count]))
    t.same(copied, await expectedCounts(sql, position), `snapshot at ${position}: the documents of exactly the events up to it`)
    t.equal(documents, rows.length)
  }
  t.equal((await app.inject({ method: 'DELETE', url: '/projections/racing' })).statusCode, 204)
})

t.test('system events record snapshots and restores; deleting the projection deletes its snapshots', async (t) => {
  const created = await systemEvents(app, 'counter', 'ProjectionSnapshotCreated')
  const listed = (await app.inject({ url: '/projections/counter/snapshots' })).json().snapshots
  t.same(created.map((event) => event.data).reverse(), listed.map((s: any) => ({ projection: 'counter', snapshotId: s.id, position: s.position, reason: 'manual' })),
    'one ProjectionSnapshotCreated per snapshot, newest listed first')
  const restored = await systemEvents(app, 'counter', 'ProjectionSnapshotRestored')
  t.same(restored.map((event) => event.data.snapshotId), [listed[2].id, listed[1].id], 'one ProjectionSnapshotRestored per restore')
  t.same(Object.keys(restored[0].data).sort(), ['position', 'projection', 'snapshotId'])
  t.equal(restored[0].data.position, listed[2].position)

  const [before] = await sql<{ count: number }[]>`select count(*) as count from projection_snapshot_documents`
  t.ok(before!.count > 3000)
  for (const name of ['counter', 'busy', 'strict']) t.equal((await app.inject({ method: 'DELETE', url: `/projections/${name}` })).statusCode, 204)
  const [after] = await sql<{ snapshots: number; documents: number }[]>`
    select (select count(*) from projection_snapshots) as snapshots, (select count(*) from projection_snapshot_documents) as documents`
  t.same(after, { snapshots: 0, documents: 0 })
})
