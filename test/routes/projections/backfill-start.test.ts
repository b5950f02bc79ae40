import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from '../../helpers/test-app.js'
import { waitFor } from '../../helpers/wait-for.js'
import type { TestDatabase } from '../../helpers/test-database.js'

// Issue 18 point 6, SPEC "Details": a time PostgreSQL would refuse is a 400 at the POST, and a run that fails at
// start ends `failed` with its error: no endless retry, at most one projection snapshot per run.
const TICKS = { source: { categories: ['tick'] }, documentId: '$.streamId', handlers: { Tick: { inc: { count: 1 } } } }

const setUp = async (t: Parameters<Parameters<typeof t.test>[1]>[0], name: string) => {
  const { app, db } = await buildTestApp(t)
  t.equal((await app.inject({ method: 'PUT', url: `/projections/${name}`, payload: TICKS })).statusCode, 201)
  t.equal((await app.inject({ method: 'POST', url: '/streams/tick-1/events', payload: { events: [{ type: 'Tick', data: {} }] } })).statusCode, 201)
  return { app, db }
}

const backfills = async (app: FastifyInstance, name: string) => (await app.inject({ url: `/projections/${name}/backfills` })).json().backfills as { id: string; status: string; error: string | null }[]
const snapshotCount = async (db: TestDatabase, name: string) =>
  (await db.sql<{ count: number }[]>`select count(*)::int as count from projection_snapshots where projection = ${name}`)[0]!.count
const failedEvents = async (app: FastifyInstance, name: string) =>
  ((await app.inject({ url: `/streams/$projection-${name}/events?limit=1000` })).json().events as { type: string; data: Record<string, unknown> }[])
    .filter((event) => event.type === 'ProjectionBackfillFailed')

const post = (app: FastifyInstance, name: string, payload: unknown) => app.inject({ method: 'POST', url: `/projections/${name}/backfills`, payload: payload as object })

const ended = (app: FastifyInstance, name: string, id: string) =>
  waitFor(`backfill ${id} ended`, async () => {
    const view = (await app.inject({ url: `/projections/${name}/backfills/${id}` })).json()
    return ['completed', 'failed', 'cancelled'].includes(view.status) && view
  }, { timeoutMs: 30_000 })

// makes the queued → running update of every run fail with this SQLSTATE, the first `times` tries
const refuseStart = (db: TestDatabase, code: string, times: number) => db.sql.unsafe(`
  create sequence start_tries;
  create function refuse_start() returns trigger language plpgsql as $$
  begin
    if old.status = 'queued' and new.status = 'running' and nextval('start_tries') <= ${times} then
      raise exception 'start refused for the test' using errcode = '${code}';
    end if;
    return new;
  end $$;
  create trigger refuse_start before update on projection_backfills for each row execute function refuse_start();`)

t.test('times PostgreSQL cannot take are a 400 at the POST, and queue nothing', async (t) => {
  const { app } = await setUp(t, 'times')
  const bodies = [
    { criteria: 'from-date', from: '0000-01-01T00:00:00Z', atomic: false },
    { criteria: 'from-date', from: '2016-12-31T23:59:60Z' },
    { criteria: 'date-range', from: '2020-01-01T00:00:00Z', to: '9999-12-31T23:59:59-01:00' },
    { criteria: 'date-range', from: '0001-01-01T00:00:00+00:01', to: '2020-01-01T00:00:00Z' },
  ]
  for (const body of bodies) {
    const res = await post(app, 'times', body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.match(res.json(), { code: 'validation-failed', detail: /must match format "date-time"/ })
  }
  t.same(await backfills(app, 'times'), [])
  const fine = await post(app, 'times', { criteria: 'from-date', from: '0001-01-01T00:00:00Z', atomic: false })
  t.equal(fine.statusCode, 202, 'the earliest time there is is fine')
  t.equal((await ended(app, 'times', fine.json().id)).status, 'completed')
})

t.test('a run the database refuses at start ends failed with its error, once, with one snapshot', async (t) => {
  const { app, db } = await setUp(t, 'refused')
  // as a server that validated less would have queued it
  const [row] = await db.sql<{ id: string }[]>`
    insert into projection_backfills (id, projection, request, atomic, generation, after_position, partitions)
    select gen_random_uuid(), name, ${db.sql.json({ criteria: 'from-date', from: '0000-01-01T00:00:00Z', atomic: false })}, false, live_generation, 0, 1
      from projections where name = 'refused'
    returning id`
  await db.sql`select pg_notify('annalist_projections', '')`
  const failed = await ended(app, 'refused', row!.id)
  t.equal(failed.status, 'failed')
  t.match(failed.error, /out of range/)
  t.equal(await snapshotCount(db, 'refused'), 1, 'the snapshot taken before the start failed, and no other')
  // the system event is recorded just after the run's status commits
  const recorded = await waitFor('ProjectionBackfillFailed', async () => {
    const events = await failedEvents(app, 'refused')
    return events.length > 0 && events
  })
  t.match(recorded, [{ data: { backfillId: row!.id, error: /out of range/ } }])
  const next = await post(app, 'refused', { criteria: 'full-rebuild', atomic: false })
  t.equal(next.statusCode, 202, 'nothing holds the projection any more')
  t.equal((await ended(app, 'refused', next.json().id)).status, 'completed')
  t.equal((await failedEvents(app, 'refused')).length, 1, 'recorded once')
})

t.test('a run that fails at start after its snapshot ends failed, with that one snapshot', async (t) => {
  const { app, db } = await setUp(t, 'broken')
  await refuseStart(db, 'P0001', 1_000_000)
  const res = await post(app, 'broken', { criteria: 'full-rebuild', atomic: false })
  t.equal(res.statusCode, 202)
  const failed = await ended(app, 'broken', res.json().id)
  t.equal(failed.status, 'failed')
  t.match(failed.error, /start refused for the test/)
  t.equal(await snapshotCount(db, 'broken'), 1)
  t.equal(failed.snapshotId, (await db.sql<{ id: string }[]>`select id from projection_snapshots where projection = 'broken'`)[0]!.id)
})

t.test('a start the database turned away for a moment is tried again and keeps its one snapshot', async (t) => {
  const { app, db } = await setUp(t, 'retried')
  await refuseStart(db, '57P03', 2)
  const res = await post(app, 'retried', { criteria: 'full-rebuild', atomic: false })
  t.equal(res.statusCode, 202)
  const done = await ended(app, 'retried', res.json().id)
  t.equal(done.status, 'completed')
  t.equal((await db.sql<{ tries: number }[]>`select last_value::int as tries from start_tries`)[0]!.tries, 3, 'two refusals, then the start')
  t.equal(await snapshotCount(db, 'retried'), 1, 'one snapshot for the run, whatever its tries')
})
