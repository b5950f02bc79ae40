import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from '../../helpers/test-app.js'
import { waitFor } from '../../helpers/wait-for.js'
import { SseClient } from '../../helpers/sse-client.js'
import { caughtUp, systemEvents } from '../../helpers/projection-api.js'

// one document per stream: every Tick counts once and records its position
const TICKS = {
  source: { categories: ['tick'] },
  documentId: '$.streamId',
  handlers: { Tick: { inc: { count: 1 }, set: { last: '$.globalPosition' } } },
}
// one document for everything: `seen` lists exactly the positions applied
const SEEN = {
  source: { categories: ['tick'] },
  documentId: '$.data.bucket',
  handlers: { Tick: { inc: { count: 1 }, push: { seen: '$.globalPosition' } } },
}

const put = (app: FastifyInstance, name: string, definition: unknown) =>
  app.inject({ method: 'PUT', url: `/projections/${name}`, payload: definition })

const post = (app: FastifyInstance, url: string, payload?: unknown) =>
  app.inject({ method: 'POST', url, ...(payload === undefined ? {} : { payload }) })

const get = async (app: FastifyInstance, url: string) => (await app.inject({ url })).json()

// `streams` streams, `perStream` ticks each, in requests of up to 1000 events
const appendTicks = async (app: FastifyInstance, streams: number, perStream: number, extra: Record<string, unknown> = {}) => {
  const positions: number[] = []
  for (let stream = 0; stream < streams; stream++) {
    for (let offset = 0; offset < perStream; offset += 1000) {
      const count = Math.min(1000, perStream - offset)
      const events = Array.from({ length: count }, () => ({ type: 'Tick', data: { bucket: 'all', ...extra } }))
      const response = await post(app, `/streams/tick-${stream}/events`, { events })
      if (response.statusCode !== 201) throw new Error(`append: ${response.statusCode} ${response.body}`)
      const { firstPosition, lastPosition } = response.json()
      for (let p = firstPosition; p <= lastPosition; p++) positions.push(p)
    }
  }
  return positions
}

// An app whose `ticks` projection has applied `streams` × `perStream` Tick events; `live` is its view then.
const ticking = async (t: Test, streams: number, perStream: number) => {
  const { app, db } = await buildTestApp(t)
  await appendTicks(app, streams, perStream)
  await put(app, 'ticks', TICKS)
  return { app, db, live: await caughtUp(app, 'ticks') }
}

const finished = (app: FastifyInstance, name: string, id: string, status = 'completed') =>
  waitFor(`backfill ${id} ${status}`, async () => {
    const view = await get(app, `/projections/${name}/backfills/${id}`)
    if (view.status === 'failed' && status !== 'failed') throw new Error(`backfill failed: ${view.error}`)
    return view.status === status && view
  }, { timeoutMs: 60_000 })


t.test('an atomic rebuild of 20,000 events never shows readers a failed, empty or older projection', async (t) => {
  const { app } = await buildTestApp(t)
  await appendTicks(app, 20, 1000)
  t.equal((await put(app, 'ticks', TICKS)).statusCode, 201)
  const before = await caughtUp(app, 'ticks')
  t.equal(before.documents, 20)

  let stop = false
  const failures: string[] = []
  let reads = 0
  // 4 readers: a known document, the status and a query; none may fail, be empty, or go back
  const reader = async (index: number) => {
    let lastVersion = 0
    let lastPosition = 0
    while (!stop) {
      const [document, status, page] = await Promise.all([
        app.inject({ url: '/projections/ticks/documents/tick-7' }),
        app.inject({ url: '/projections/ticks' }),
        app.inject({ method: 'POST', url: '/projections/ticks/query', payload: { limit: 1000, count: true } }),
      ])
      reads++
      if (document.statusCode !== 200) failures.push(`reader ${index}: document ${document.statusCode}`)
      else {
        const { version, document: body } = document.json()
        if (body.count !== 1000) failures.push(`reader ${index}: count ${body.count}`)
        if (version < lastVersion) failures.push(`reader ${index}: version ${version} after ${lastVersion}`)
        lastVersion = version
      }
      const view = status.json()
      if (status.statusCode !== 200 || view.documents !== 20) failures.push(`reader ${index}: status ${status.statusCode} ${view.documents}`)
      if (view.position < lastPosition) failures.push(`reader ${index}: position ${view.position} after ${lastPosition}`)
      lastPosition = view.position
      if (page.statusCode !== 200 || page.json().count !== 20) failures.push(`reader ${index}: query ${page.statusCode} ${page.body.slice(0, 80)}`)
    }
  }
  const readers = [0, 1, 2, 3].map(reader)

  const started = await post(app, '/projections/ticks/backfills', { criteria: 'full-rebuild', requestedBy: 'test' })
  t.equal(started.statusCode, 202)
  const backfill = started.json()
  t.match(backfill, { status: 'queued', atomic: true, criteria: 'full-rebuild', requestedBy: 'test' })
  t.match(backfill.id, /^[0-9a-f-]{36}$/)
  const again = await post(app, '/projections/ticks/backfills', { criteria: 'full-rebuild' })
  t.equal(again.statusCode, 409, 'a second run while one is in progress')
  t.equal(again.json().code, 'backfill-in-progress')
  t.equal((await get(app, '/projections/ticks')).status, 'rebuilding')

  // the live generation keeps applying new events during the rebuild
  await appendTicks(app, 1, 5)
  const done = await finished(app, 'ticks', backfill.id)
  stop = true
  await Promise.all(readers)
  t.same(failures, [], `no failed, empty or regressing read in ${reads} rounds`)
  t.ok(reads > 4, `readers ran during the rebuild (${reads} rounds)`)
  t.match(done, { status: 'completed', processed: 20_000, total: 20_000, percent: 100, error: null })
  t.ok(done.eventsPerSecond > 0)
  t.ok(done.startedAt && done.finishedAt)

  const view = await caughtUp(app, 'ticks')
  t.equal(view.documents, 20)
  t.equal((await get(app, '/projections/ticks/documents/tick-0')).document.count, 1005, 'the new generation holds the events appended during the rebuild, once')
  t.ok(view.position >= before.position)

  const recorded = await systemEvents(app, 'ticks')
  const seconds = (Date.parse(done.finishedAt) - Date.parse(done.startedAt)) / 1000
  const progress = recorded.filter((event) => event.type === 'ProjectionBackfillProgress')
  t.ok(progress.length <= Math.ceil(seconds / 5) + 1, `${progress.length} progress events in ${seconds} s: at most one every 5 s`)
  const times = progress.map((event) => Date.parse((event as unknown as { createdAt: string }).createdAt))
  for (let i = 1; i < times.length; i++) t.ok(times[i]! - times[i - 1]! >= 4900, 'progress events are 5 s apart')
  const types = recorded.map((event) => event.type)
  for (const type of ['ProjectionBackfillRequested', 'ProjectionBackfillStarted', 'ProjectionSwapped', 'ProjectionBackfillCompleted']) {
    t.ok(types.includes(type), `${type} recorded`)
  }
})

t.test('rollback swaps the previous generation and its definition back, and again forward', async (t) => {
  const { app } = await ticking(t, 3, 4)
  t.equal((await post(app, '/projections/ticks/rollback')).statusCode, 409, 'nothing to roll back to yet')

  const doubled = { ...TICKS, handlers: { Tick: { inc: { count: 2 } } } }
  t.equal((await put(app, 'ticks', doubled)).statusCode, 200)
  const [rebuild] = (await get(app, '/projections/ticks/backfills')).backfills
  t.match(rebuild, { criteria: 'full-rebuild', atomic: true, requestedBy: 'definition-change' })
  await finished(app, 'ticks', rebuild.id)
  await caughtUp(app, 'ticks')
  t.equal((await get(app, '/projections/ticks/documents/tick-1')).document.count, 8)
  t.equal((await get(app, '/projections/ticks')).definitionVersion, 2)

  await appendTicks(app, 1, 1)
  const back = await post(app, '/projections/ticks/rollback')
  t.equal(back.statusCode, 200)
  t.match(back.json(), { definitionVersion: 1, definition: TICKS })
  await caughtUp(app, 'ticks')
  t.equal((await get(app, '/projections/ticks/documents/tick-1')).document.count, 4, 'the old definition’s documents')
  t.equal((await get(app, '/projections/ticks/documents/tick-0')).document.count, 5, 'which caught up from their own position')

  const forward = await post(app, '/projections/ticks/rollback')
  t.equal(forward.statusCode, 200)
  t.equal(forward.json().definitionVersion, 2)
  await caughtUp(app, 'ticks')
  t.equal((await get(app, '/projections/ticks/documents/tick-0')).document.count, 10)
  const types = (await systemEvents(app, 'ticks')).filter((event) => event.type === 'ProjectionRolledBack')
  t.equal(types.length, 2)
})

t.test('cancelling an atomic rebuild mid-way leaves the live projection untouched', async (t) => {
  const { app, db, live } = await ticking(t, 10, 1000)
  const started = (await post(app, '/projections/ticks/backfills', { criteria: 'full-rebuild', batchSize: 50 })).json()
  await waitFor('the rebuild under way', async () => {
    const view = await get(app, `/projections/ticks/backfills/${started.id}`)
    return view.processed > 0 && view
  })
  const cancelled = await app.inject({ method: 'DELETE', url: `/projections/ticks/backfills/${started.id}` })
  t.equal(cancelled.statusCode, 200)
  t.equal(cancelled.json().status, 'cancelled')
  t.ok(cancelled.json().processed < 10_000, 'stopped before the end')
  t.equal((await app.inject({ method: 'DELETE', url: `/projections/ticks/backfills/${started.id}` })).statusCode, 409, 'an ended run cannot be cancelled')

  const view = await get(app, '/projections/ticks')
  t.match(view, { status: 'running', documents: 10, definitionVersion: 1 })
  t.ok(view.position >= live.position, 'the live generation kept its place (system events move the head)')
  t.equal((await get(app, '/projections/ticks/documents/tick-3')).document.count, 1000)
  const [generations] = await db.sql<{ count: number }[]>`select count(*) as count from projection_generations where projection = 'ticks'`
  t.equal(generations!.count, 1, 'the half-built generation is gone')
  const [orphans] = await db.sql<{ count: number }[]>`
    select count(*) as count from projection_documents where projection = 'ticks' and generation <> ${1}`
  t.equal(orphans!.count, 0, 'with its documents')
  t.ok((await systemEvents(app, 'ticks')).some((event) => event.type === 'ProjectionBackfillCancelled'))
})

t.test('bad requests are 400 and change nothing; unknown ids 404', async (t) => {
  const { app } = await buildTestApp(t)
  await put(app, 'ticks', TICKS)
  await put(app, 'seen', SEEN)
  const bad = [
    {},
    { criteria: 'everything' },
    { criteria: 'from-date' },
    { criteria: 'date-range', from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' },
    { criteria: 'last-n-days' },
    { criteria: 'last-n-days', days: 0 },
    { criteria: 'event-number-range', fromPosition: 5 },
    { criteria: 'event-number-range', fromPosition: 5, toPosition: 4 },
    { criteria: 'from-event-number', fromPosition: 0 },
    { criteria: 'last-n-events', count: 0 },
    { criteria: 'full-rebuild', days: 3 },
    { criteria: 'incremental', atomic: true },
    { criteria: 'full-rebuild', surprise: 1 },
    { criteria: 'full-rebuild', filter: { types: [] } },
    { criteria: 'full-rebuild', batchSize: 0 },
    { criteria: 'full-rebuild', maxConcurrency: 17 },
  ]
  for (const body of bad) {
    const response = await post(app, '/projections/ticks/backfills', body)
    t.equal(response.statusCode, 400, JSON.stringify(body))
    t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8')
  }
  const gathering = await post(app, '/projections/seen/backfills', { criteria: 'full-rebuild', maxConcurrency: 4 })
  t.equal(gathering.statusCode, 400, 'partitions by stream need documents per stream')
  t.match(gathering.json().detail, /documentId/)
  t.same((await get(app, '/projections/ticks/backfills')).backfills, [])
  t.equal((await post(app, '/projections/nope/backfills', { criteria: 'full-rebuild' })).statusCode, 404)
  t.equal((await app.inject({ url: '/projections/ticks/backfills/00000000-0000-4000-8000-000000000000' })).statusCode, 404)
  t.equal((await app.inject({ url: '/projections/ticks/backfills/not-a-uuid' })).statusCode, 400)
})

t.test('progress streams as server-sent events until the run ends', async (t) => {
  const { app } = await ticking(t, 4, 500)
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const started = (await post(app, '/projections/ticks/backfills', { criteria: 'full-rebuild', batchSize: 100 })).json()
  const client = await SseClient.open(address, `/projections/ticks/backfills/${started.id}/progress`)
  t.teardown(() => client.close())
  t.equal(client.status, 200)
  await waitFor('the progress stream to end', () => client.ended, { timeoutMs: 60_000 })
  const views = client.messages.filter((message) => message.event === 'progress').map((message) => JSON.parse(message.data))
  t.ok(views.length >= 2, `${views.length} progress events`)
  t.equal(views.at(-1).status, 'completed', 'the stream ends with the terminal status')
  for (let i = 1; i < views.length; i++) t.ok(views[i].processed >= views[i - 1].processed, 'processed never goes back')
  t.equal(views.at(-1).processed, 2000)
  const refused = await app.inject({ url: `/projections/ticks/backfills/${started.id}/progress`, headers: { accept: 'application/json' } })
  t.equal(refused.statusCode, 406)
})

t.test('appending ProjectionBackfillRequested to $projections starts a run whose events carry its correlationId', async (t) => {
  const { app } = await ticking(t, 5, 20)
  const request = (projection: string, correlationId: string, body: Record<string, unknown>) =>
    post(app, '/streams/$projections/events', {
      events: [{ type: 'ProjectionBackfillRequested', data: { projection, ...body }, metadata: { correlationId } }],
    })
  t.equal((await request('ticks', 'corr-1', { criteria: 'full-rebuild', maxConcurrency: 2 })).statusCode, 201)
  const completed = await waitFor('the requested run to complete', async () => {
    const events = await systemEvents(app, 'ticks')
    return events.find((event) => event.type === 'ProjectionBackfillCompleted')
  }, { timeoutMs: 30_000 })
  t.equal(completed.metadata.correlationId, 'corr-1', 'the completion carries the request’s correlationId')
  const [run] = (await get(app, '/projections/ticks/backfills')).backfills
  t.match(run, { status: 'completed', criteria: 'full-rebuild', atomic: true, maxConcurrency: 2, correlationId: 'corr-1', processed: 100, total: 100 })
  const requested = (await systemEvents(app, 'ticks')).find((event) => event.type === 'ProjectionBackfillRequested')
  t.equal(requested?.metadata.correlationId, 'corr-1')
  t.equal((await get(app, '/projections/ticks/documents/tick-4')).document.count, 20)

  t.equal((await request('missing', 'corr-2', { criteria: 'full-rebuild' })).statusCode, 201)
  const failed = await waitFor('the refusal to be recorded', async () =>
    (await systemEvents(app, 'missing')).find((event) => event.type === 'ProjectionBackfillFailed'),
  )
  t.match(failed, { data: { projection: 'missing', code: 'projection-not-found' }, metadata: { correlationId: 'corr-2' } })
  t.equal((await request('ticks', 'corr-3', { criteria: 'from-date' })).statusCode, 201)
  const invalid = await waitFor('the invalid request to be refused', async () =>
    (await systemEvents(app, 'ticks')).find((event) => event.type === 'ProjectionBackfillFailed'),
  )
  t.match(invalid, { data: { code: 'validation-failed', error: /from/ }, metadata: { correlationId: 'corr-3' } })
  t.equal((await get(app, '/projections/ticks/backfills')).backfills.length, 1, 'each request started at most one run')
})

t.test('maxConcurrency 4 builds per-stream documents in partitions, each event exactly once', async (t) => {
  const { app, db } = await ticking(t, 37, 100)
  const started = (await post(app, '/projections/ticks/backfills', { criteria: 'full-rebuild', maxConcurrency: 4, batchSize: 200 })).json()
  t.equal(started.maxConcurrency, 4)
  const done = await finished(app, 'ticks', started.id)
  t.match(done, { processed: 3700, total: 3700, percent: 100 })
  const partitions = await db.sql<{ partition: number; processed: number }[]>`
    select partition, processed from projection_backfill_partitions where backfill = ${started.id} order by partition`
  t.equal(partitions.length, 4)
  t.ok(partitions.every((partition) => partition.processed > 0), 'every partition did a share')
  await caughtUp(app, 'ticks')
  const page = await post(app, '/projections/ticks/query', { limit: 100 })
  const counts = page.json().documents.map((document: { document: { count: number } }) => document.document.count)
  t.equal(counts.length, 37)
  t.ok(counts.every((count: number) => count === 100), 'every stream counted exactly 100')
})

t.test('each criteria and filter selects exactly the right events', async (t) => {
  const { app, db } = await buildTestApp(t)
  const SELECTIVE = {
    source: { categories: ['tick'] },
    documentId: '$.data.bucket',
    handlers: { Tick: { inc: { count: 1 }, push: { seen: '$.globalPosition' } }, Tock: { inc: { count: 1 }, push: { seen: '$.globalPosition' } } },
  }
  const names = ['full', 'from-date', 'date-range', 'last-n-days', 'range', 'from-number', 'last-n', 'types', 'metadata', 'categories']
  for (const name of names) {
    t.equal((await put(app, name, SELECTIVE)).statusCode, 201)
    t.equal((await post(app, `/projections/${name}/stop`)).statusCode, 200)
  }
  // ten events in one stream: the first five three days old, every third a Tock, every other one tagged
  const events = Array.from({ length: 10 }, (_, i) => ({
    type: i % 3 === 0 ? 'Tock' : 'Tick',
    data: { bucket: 'all' },
    metadata: i % 2 === 0 ? { origin: 'import' } : {},
  }))
  const appended = (await post(app, '/streams/tick-1/events', { events })).json()
  await post(app, '/streams/other-1/events', { events: [{ type: 'Tick', data: { bucket: 'all' } }] })
  const p = Array.from({ length: 10 }, (_, i) => appended.firstPosition + i)
  await db.sql`update events set created_at = now() - interval '3 days' where global_position <= ${p[4]!}`
  const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString()

  const expected: Record<string, { body: Record<string, unknown>; positions: number[] }> = {
    full: { body: { criteria: 'full-rebuild', atomic: false }, positions: p },
    'from-date': { body: { criteria: 'from-date', from: daysAgo(2) }, positions: p.slice(5) },
    'date-range': { body: { criteria: 'date-range', from: daysAgo(4), to: daysAgo(2) }, positions: p.slice(0, 5) },
    'last-n-days': { body: { criteria: 'last-n-days', days: 1 }, positions: p.slice(5) },
    range: { body: { criteria: 'event-number-range', fromPosition: p[2], toPosition: p[5] }, positions: p.slice(2, 6) },
    'from-number': { body: { criteria: 'from-event-number', fromPosition: p[7] }, positions: p.slice(7) },
    'last-n': { body: { criteria: 'last-n-events', count: 4 }, positions: p.slice(6) },
    types: { body: { criteria: 'full-rebuild', atomic: false, filter: { types: ['Tock'] } }, positions: [p[0]!, p[3]!, p[6]!, p[9]!] },
    metadata: { body: { criteria: 'full-rebuild', atomic: false, filter: { metadata: { origin: 'import' } } }, positions: p.filter((_, i) => i % 2 === 0) },
    categories: { body: { criteria: 'event-number-range', fromPosition: p[8], toPosition: p[9]! + 1, filter: { categories: ['other'] } }, positions: [] },
  }
  for (const [name, { body, positions }] of Object.entries(expected)) {
    const response = await post(app, `/projections/${name}/backfills`, body)
    t.equal(response.statusCode, 202, `${name}: ${response.body.slice(0, 120)}`)
    const done = await finished(app, name, response.json().id)
    t.equal(done.total, positions.length, `${name}: total counts the selected events`)
    t.equal(done.processed, positions.length)
    t.equal(done.atomic, false)
    const document = await app.inject({ url: `/projections/${name}/documents/all` })
    if (positions.length === 0) t.equal(document.statusCode, 404, `${name}: nothing selected, nothing written`)
    else t.same(document.json().document, { count: positions.length, seen: positions }, `${name}: exactly the selected events, once, in order`)
    t.ok(done.snapshotId, `${name}: a projection snapshot was taken first`)
  }

  // incremental: the events after the projection's own position, tracked as a run
  t.equal((await put(app, 'incremental', SELECTIVE)).statusCode, 201)
  await caughtUp(app, 'incremental')
  await post(app, '/projections/incremental/stop')
  const more = (await post(app, '/streams/tick-2/events', { events: events.slice(0, 3) })).json()
  const run = (await post(app, '/projections/incremental/backfills', { criteria: 'incremental' })).json()
  const done = await finished(app, 'incremental', run.id)
  t.equal(done.total, 3, 'only the events after the live position')
  const document = (await get(app, '/projections/incremental/documents/all')).document
  t.equal(document.count, 13)
  t.same(document.seen.slice(-3), [more.firstPosition, more.firstPosition + 1, more.firstPosition + 2])
  await post(app, '/projections/incremental/start')
  await caughtUp(app, 'incremental')
  t.equal((await get(app, '/projections/incremental/documents/all')).document.count, 13, 'the live worker takes none of them twice')
})

t.test('a non-atomic run snapshots the live documents first, and restoring that snapshot undoes it', async (t) => {
  const { app } = await buildTestApp(t)
  await put(app, 'undo', SEEN)
  await appendTicks(app, 1, 5)
  await caughtUp(app, 'undo')
  await post(app, '/projections/undo/stop')
  await appendTicks(app, 1, 3)
  const run = (await post(app, '/projections/undo/backfills', { criteria: 'incremental' })).json()
  const done = await finished(app, 'undo', run.id)
  t.equal((await get(app, '/projections/undo/documents/all')).document.count, 8)
  t.ok(done.snapshotId)
  const snapshots = (await get(app, '/projections/undo/snapshots')).snapshots
  t.match(snapshots, [{ id: done.snapshotId, documents: 1 }], 'the run’s snapshot is listed')
  const restored = await post(app, `/projections/undo/snapshots/${done.snapshotId}/restore`)
  t.equal(restored.statusCode, 200)
  t.equal((await get(app, '/projections/undo/documents/all')).document.count, 5, 'the documents as they were before the run')
  await post(app, '/projections/undo/start')
  await caughtUp(app, 'undo')
  t.equal((await get(app, '/projections/undo/documents/all')).document.count, 8, 'and the worker applies the three events once')
})

t.test('deleting a projection cancels its run first', async (t) => {
  const { app, db } = await ticking(t, 10, 1000)
  const run = (await post(app, '/projections/ticks/backfills', { criteria: 'full-rebuild', batchSize: 20 })).json()
  await waitFor('the run under way', async () => (await get(app, `/projections/ticks/backfills/${run.id}`)).processed > 0)
  t.equal((await app.inject({ method: 'DELETE', url: '/projections/ticks' })).statusCode, 204)
  const cancelled = (await systemEvents(app, 'ticks')).find((event) => event.type === 'ProjectionBackfillCancelled')
  t.match(cancelled, { data: { projection: 'ticks', backfillId: run.id, reason: 'projection deleted' } })
  const [left] = await db.sql<{ count: number }[]>`select count(*) as count from projection_documents where projection = 'ticks'`
  t.equal(left!.count, 0, 'no document of either generation is left')
  t.equal((await post(app, '/projections/ticks/backfills', { criteria: 'full-rebuild' })).statusCode, 404)
})

t.test('a code projection rebuilds atomically and, non-atomically, never takes an event twice', async (t) => {
  const dir = t.testdir({
    'tally.ts': `
      export default {
        name: 'tally',
        source: { categories: ['tick'] },
        handlers: {
          Tick: async (event, ctx) => {
            const all = (await ctx.load('all')) ?? { count: 0 }
            await ctx.store('all', { count: all.count + 1 })
            // the same document twice in one handler: both writes belong to this event
            const mine = (await ctx.load(event.streamId)) ?? { count: 0 }
            await ctx.store(event.streamId, { count: mine.count + 1 })
            await ctx.store(event.streamId, { count: mine.count + 1, last: event.globalPosition })
          },
        },
      }`,
  })
  const { app } = await buildTestApp(t, { PROJECTIONS_DIR: dir })
  await appendTicks(app, 3, 50)
  await caughtUp(app, 'tally')
  const atomic = (await post(app, '/projections/tally/backfills', { criteria: 'full-rebuild' })).json()
  await finished(app, 'tally', atomic.id)
  await caughtUp(app, 'tally')
  t.equal((await get(app, '/projections/tally/documents/all')).document.count, 150)
  t.equal((await get(app, '/projections/tally/documents/tick-2')).document.count, 50)
  t.equal((await post(app, '/projections/tally/backfills', { criteria: 'full-rebuild', maxConcurrency: 2 })).statusCode, 400, 'a code projection may write any document')

  const again = (await post(app, '/projections/tally/backfills', { criteria: 'full-rebuild', atomic: false })).json()
  const done = await finished(app, 'tally', again.id)
  t.equal(done.processed, 150)
  t.equal((await get(app, '/projections/tally/documents/all')).document.count, 150, 'every document had seen every event: nothing applied twice')
  t.equal((await get(app, '/projections/tally/documents/tick-0')).document.count, 50)
})
