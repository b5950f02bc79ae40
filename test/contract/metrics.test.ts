import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { connect } from '../../src/db/connect.js'
import { Metrics } from '../../src/observability/metrics.js'
import { events, streamId, withId } from '../helpers/fixtures.js'
import { buildBrokenApp, LEAKS } from '../helpers/broken-app.js'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildTestApp } from '../helpers/test-app.js'
import { waitFor } from '../helpers/wait-for.js'

// GET /metrics: Prometheus text with the series SPEC "Operations" names, checked against openapi.yaml.
const contract = await OpenapiContract.load()
const testApp = await buildTestApp(t)
const { app, db } = testApp
const PATH = '/metrics'

const callOn = (target: FastifyInstance) => async (t: Test, options: InjectOptions = {}) => {
  const res = await target.inject({ url: PATH, ...options })
  contract.check(t, 'GET', PATH, res)
  return res
}
const call = callOn(app)

// the value of one series, by its exact label set as Prometheus prints it
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((candidate) => candidate.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('requests, appends and events are counted; projections report position, lag and status', async (t) => {
  const before = (await call(t)).body
  const id = streamId()
  const payload = { events: events(3).map(withId) }
  const appended = await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload })
  t.equal(appended.statusCode, 201)
  // the same event ids again: an idempotent repeat, counted as an append but not as events
  t.equal((await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload })).statusCode, 200)
  const definition = { source: { categories: ['order'] }, documentId: '$.streamId', handlers: { OrderPlaced: { inc: { n: 1 } } } }
  t.equal((await app.inject({ method: 'PUT', url: '/projections/totals', payload: definition })).statusCode, 201)
  const { lastPosition } = appended.json()
  await waitFor('the projection to catch up', async () => (await app.inject({ url: '/projections/totals' })).json().lag === 0 || undefined)

  const res = await call(t)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = res.body
  const created = (series: string) => (sample(text, series) ?? 0) - (sample(before, series) ?? 0)
  t.equal(created('annalist_appends_total{outcome="created"}'), 1)
  t.equal(created('annalist_appends_total{outcome="duplicate"}'), 1)
  t.equal(created('annalist_events_appended_total'), 3)
  t.ok((sample(text, 'annalist_http_request_duration_seconds_count{method="POST",route="/streams/:streamId/events",status="201"}') ?? 0) >= 1, 'latency by route pattern and status')
  // the head is past the appended events: creating the projection recorded ProjectionStarted in $projection-totals
  const head = sample(text, 'annalist_log_head_position')!
  t.ok(head >= lastPosition, 'the gap-safe head')
  t.equal(sample(text, 'annalist_projection_position{projection="totals"}'), head)
  t.equal(sample(text, 'annalist_projection_lag{projection="totals"}'), 0)
  t.equal(sample(text, 'annalist_projection_status{projection="totals",status="running"}'), 1)
  t.equal(sample(text, 'annalist_projection_status{projection="totals",status="failed"}'), 0)
  t.ok((sample(text, 'annalist_db_pool_size') ?? 0) >= 2, 'the pool size')
  t.match(text, /^annalist_db_connections\{state="[a-z ()]+"\} \d+$/m, 'pool use by connection state')
})

t.test('a transaction held open is named as what holds the gap-safe head back', async (t) => {
  const holder = connect(db.url, { max: 1, applicationName: 'stuck-writer' })
  t.teardown(() => holder.end({ timeout: 1 }))
  let release!: () => void
  const held = holder.begin(async (tx) => {
    await tx`select pg_current_xact_id()`
    await new Promise<void>((resolve) => (release = resolve))
  })
  await waitFor('the transaction to be open', () => release !== undefined && holder !== undefined || undefined)
  const text = await waitFor('the holder in /metrics', async () => {
    const body = (await call(t)).body
    return /annalist_oldest_transaction_seconds\{pid="\d+",application_name="stuck-writer",state="idle in transaction"\} [\d.e-]+/.test(body) ? body : undefined
  })
  t.ok(text, 'the oldest transaction carries its application name and state')
  release()
  await held
  const after = (await call(t)).body
  t.notMatch(after, /application_name="stuck-writer"/, 'and is gone once it ends')
})

t.test('backfill progress is reported for every run in progress, and goes when it ends', async (t) => {
  // a code projection only another instance serves: its run stays queued here, as a run elsewhere would
  await db.sql`insert into projections (name, kind) values ('elsewhere', 'code')`
  await db.sql`insert into projection_generations (projection, generation, definition_version, state) values ('elsewhere', 1, 1, 'live')`
  const started = await app.inject({ method: 'POST', url: '/projections/elsewhere/backfills', payload: { criteria: 'full-rebuild', atomic: false } })
  t.equal(started.statusCode, 202)
  const { id } = started.json()
  await db.sql`update projection_backfills set status = 'running', total = 100 where id = ${id}`
  await db.sql`insert into projection_backfill_partitions (backfill, partition, position, processed) values (${id}, 0, 40, 40)`
  let text = (await call(t)).body
  t.equal(sample(text, `annalist_backfill_processed_events{projection="elsewhere",backfill="${id}",status="running"}`), 40)
  t.equal(sample(text, `annalist_backfill_total_events{projection="elsewhere",backfill="${id}",status="running"}`), 100)
  t.equal((await app.inject({ method: 'DELETE', url: `/projections/elsewhere/backfills/${id}` })).statusCode, 200)
  text = (await call(t)).body
  t.notMatch(text, new RegExp(`backfill="${id}"`), 'an ended run leaves the series')
})

t.test('a bad tenant header is 400; a database failure is a generic 500', async (t) => {
  t.equal((await call(t, { headers: { 'x-tenant-id': 'Not A Tenant' } })).statusCode, 400)
  const res = await callOn(await buildBrokenApp(t, contract.doc))(t)
  t.equal(res.statusCode, 500)
  t.notMatch(res.body, LEAKS, 'no database details leak')
})

t.test('the server adds the event-loop delay since the previous scrape (docs/operations.md)', async (t) => {
  // the server's own Metrics, as src/server.ts makes it: Node's process metrics are once per process
  const { services } = testApp
  const metrics = new Metrics(db.sql, services.logHead, { poolSize: 2 })
  metrics.collectProcessMetrics()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const text = (await metrics.render()).body
  for (const stat of ['p50', 'p90', 'p99', 'max']) {
    t.match(text, new RegExp(`^annalist_nodejs_eventloop_lag_${stat}_seconds [0-9.e-]+$`, 'm'), stat)
  }
})

t.test('every documented status of /metrics was produced', async (t) => {
  t.same(contract.unexercised((path) => path === PATH), [])
})
