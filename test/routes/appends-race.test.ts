import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { connect } from '../../src/db/connect.js'
import { loadOpenapi } from '../../src/http/openapi-document.js'
import { createServices } from '../../src/services.js'
import { appendBatchStats } from '../../src/events/append-batcher.js'
import { buildTestApp } from '../helpers/test-app.js'
import { event } from '../helpers/fixtures.js'

// SPEC "Append to several streams at once": all or nothing under any concurrency. Two instances (two pools, so
// two batchers) on one database race multi-stream requests over overlapping stream sets, in every order, beside
// single appends; the canonical lock order must keep them from deadlocking, and every answer must be true.
const a = await buildTestApp(t, {}, { max: 12 })
const second = a.db.url ? connect(a.db.url, { max: 8 }) : a.db.sql
const servicesB = await createServices(second, a.config, { info: () => {}, warn: () => {} })
await servicesB.start()
t.teardown(async () => {
  await servicesB.stop()
  if (a.db.url) await second.end({ timeout: 1 })
})
const b = await buildApp({ config: a.config, sql: second, services: servicesB, openapi: await loadOpenapi(), isReady: async () => true, logger: false })
t.teardown(() => b.close())
await b.ready()

interface Entry {
  streamId: string
  expectedVersion: number | 'any'
  ids: string[]
}
interface Sent {
  entries: Entry[]
  status: number
  body: { appends?: { streamId: string; firstVersion: number; lastVersion: number; firstPosition: number; lastPosition: number }[]; conflicts?: { streamId: string; currentVersion: number }[]; code?: string }
}

// a small deterministic generator, so a failure can be replayed
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

const STREAMS = Array.from({ length: 8 }, (_, index) => `acct-${index}-${randomUUID().slice(0, 4)}`)

const send = async (app: FastifyInstance, entries: Entry[], single: boolean): Promise<Sent> => {
  const body = (entry: Entry) => ({ expectedVersion: entry.expectedVersion, events: entry.ids.map((eventId) => event('Moved', { n: 1 }, { eventId })) })
  const res = single
    ? await app.inject({ method: 'POST', url: `/streams/${entries[0]!.streamId}/events`, payload: body(entries[0]!) })
    : await app.inject({ method: 'POST', url: '/appends', payload: { appends: entries.map((entry) => ({ streamId: entry.streamId, ...body(entry) })) } })
  const json = res.json()
  // a single append answers like a request of one entry
  const answer = single && res.statusCode < 300 ? { appends: [json] } : single && json.code === 'wrong-expected-version' ? { ...json, conflicts: [{ streamId: entries[0]!.streamId, currentVersion: json.currentVersion }] } : json
  return { entries, status: res.statusCode, body: answer }
}

// Each client knows a version per stream, learns from its answers, and sends 2–4 streams in random order
// (sometimes one, as a single append), each expecting its known version or, now and then, `any`.
const client = async (app: FastifyInstance, index: number, rounds: number): Promise<Sent[]> => {
  const next = random(index + 1)
  const known = new Map(STREAMS.map((id) => [id, 0]))
  const sent: Sent[] = []
  for (let round = 0; round < rounds; round++) {
    const single = next() < 0.25
    const count = single ? 1 : 2 + Math.floor(next() * 3)
    const streams = [...STREAMS].sort(() => next() - 0.5).slice(0, count)
    const entries = streams.map((streamId) => ({
      streamId,
      expectedVersion: next() < 0.35 ? ('any' as const) : known.get(streamId)!,
      ids: Array.from({ length: 1 + Math.floor(next() * 2) }, () => randomUUID()),
    }))
    const answer = await send(app, entries, single)
    sent.push(answer)
    for (const run of answer.body.appends ?? []) known.set(run.streamId, run.lastVersion)
    for (const conflict of answer.body.conflicts ?? []) known.set(conflict.streamId, conflict.currentVersion)
  }
  return sent
}

t.test('racing multi-stream requests over overlapping streams, and single appends, on two instances', async (t) => {
  const before = [appendBatchStats(a.db.sql), appendBatchStats(second)].map((stats) => ({ ...stats }))
  const all = (await Promise.all(Array.from({ length: 16 }, (_, index) => client(index % 2 === 0 ? a.app : b, index, 14)))).flat()

  t.same(all.filter((sent) => sent.status >= 500), [], 'no 5xx')
  t.same(all.filter((sent) => ![201, 409].includes(sent.status) || (sent.status === 409 && sent.body.code !== 'wrong-expected-version')), [], 'every answer is 201 or 409 wrong-expected-version')
  const acked = all.filter((sent) => sent.status === 201)
  const refused = all.filter((sent) => sent.status === 409)
  t.ok(acked.some((sent) => sent.entries.length > 1) && refused.some((sent) => sent.entries.length > 1), `${acked.length} requests written, ${refused.length} refused`)
  const after = [appendBatchStats(a.db.sql), appendBatchStats(second)]
  t.ok(after.some((stats, i) => stats.appends - before[i]!.appends > stats.batches - before[i]!.batches), 'requests shared batches')
  t.equal(after.reduce((sum, stats, i) => sum + stats.fallbacks - before[i]!.fallbacks, 0), 0, 'no batch was refused (a deadlock would have been)')

  const stored = new Map<string, { streamId: string; streamVersion: number; globalPosition: number }>()
  for (const id of STREAMS) {
    const events = (await a.app.inject({ url: `/streams/${id}/events?limit=1000` })).json().events as { eventId: string; streamId: string; streamVersion: number; globalPosition: number }[]
    t.same(events.map((e) => e.streamVersion), Array.from({ length: events.length }, (_, i) => i + 1), `${id}: versions contiguous from 1`)
    for (const e of events) stored.set(e.eventId, e)
  }
  const misplaced = acked.filter(({ entries, body }) => entries.some((entry, k) => {
    const run = body.appends![k]!
    return run.streamId !== entry.streamId || entry.ids.some((id, offset) => {
      const e = stored.get(id)
      return e?.streamId !== entry.streamId || e.streamVersion !== run.firstVersion + offset ||
        (offset === 0 && e.globalPosition !== run.firstPosition) || (offset === entry.ids.length - 1 && e.globalPosition !== run.lastPosition)
    })
  }))
  t.same(misplaced, [], 'each acknowledged request is entirely present, at the versions and positions it was answered')
  const positions = acked.map(({ body }) => body.appends!.flatMap((run) => [run.firstPosition, run.lastPosition]))
  t.same(positions.filter((list) => list.some((p, i) => i > 0 && p < list[i - 1]!)), [], 'positions increase in request order')
  t.same(refused.filter(({ entries }) => entries.some((entry) => entry.ids.some((id) => stored.has(id)))), [], 'each refused request is entirely absent')
  t.equal(stored.size, acked.reduce((sum, { entries }) => sum + entries.reduce((n, entry) => n + entry.ids.length, 0), 0), 'and nothing else is stored')
  const truthful = refused.filter(({ entries, body }) => body.conflicts!.some((conflict) => {
    const entry = entries.find((candidate) => candidate.streamId === conflict.streamId)
    return entry === undefined || entry.expectedVersion === 'any' || entry.expectedVersion === conflict.currentVersion
  }))
  t.same(truthful, [], 'every conflict names an entry of the request whose expectation failed')
})
