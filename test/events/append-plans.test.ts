import { randomUUID } from 'node:crypto'
import t from 'tap'
import { connect } from '../../src/db/connect.js'
import { appendBatch, type PendingAppend } from '../../src/events/append-call.js'
import { testDatabase } from '../helpers/test-database.js'

// sql/0026, sql/0029: the statements of the append functions keep their plans for the session (a batch's from its first
// call), and a plan made while `streams` was nearly empty must not read the whole table once it is not. One session
// appends to new streams, the store then grows by 20,000 streams, and its next appends must not scan `streams` or
// `events` whole.
const pending = (streamId: string, eventId?: string): PendingAppend => ({
  tenant: 'default',
  streamId,
  kind: 'any',
  version: null,
  count: 1,
  eventIds: eventId ? [eventId] : [],
  events: eventId ? `[{"eventId":"${eventId}","type":"OrderPlaced","data":{"total":1}}]` : '[{"type":"OrderPlaced","data":{"total":1}}]',
})

t.test('batches keep reading the streams they touch by key after the store grows', async (t) => {
  const db = await testDatabase(t)
  // one session, so every call finds the plans the earlier ones left (the embedded database has but one)
  const session = db.url ? connect(db.url, { max: 1 }) : db.sql
  if (db.url) t.teardown(() => session.end({ timeout: 1 }))
  const appendTo = (names: string[], ids = false) => appendBatch(session, names.map((name) => [pending(name, ids ? randomUUID() : undefined)]))
  for (let call = 0; call < 12; call++) await appendTo([`young-${call}-a`, `young-${call}-b`], call % 2 === 0)
  await db.sql`
    insert into streams (tenant, stream_id, category, version, created_at, updated_at)
    select 'default', 'grown-' || n, 'grown', 1, now(), now() from generate_series(1, 20000) as n`
  await db.sql`
    insert into events (global_position, tenant, stream_id, category, stream_version, event_id, type, data, metadata, created_at)
    select nextval('events_global_position_seq'), 'default', 'grown-' || n, 'grown', 1, gen_random_uuid(), 'Grown', '{}', '{}', now()
      from generate_series(1, 20000) as n`
  await db.sql`analyze streams`
  await db.sql`analyze events`
  const sequentialScans = async (): Promise<Record<string, number>> => {
    await session`select pg_stat_force_next_flush()`
    await session`select pg_stat_clear_snapshot()`
    const rows = await session<{ relname: string; scans: number }[]>`
      select relname, seq_scan::int as scans from pg_stat_user_tables where relname in ('streams', 'events')`
    return Object.fromEntries(rows.map(({ relname, scans }) => [relname, scans]))
  }
  const before = await sequentialScans()
  for (let call = 0; call < 10; call++) {
    const rows = await appendTo([`grown-${call + 1}`, `old-${call}-a`, `young-${call}-a`], call % 2 === 0)
    t.same(rows.map(([row]) => row!.outcome), ['appended', 'appended', 'appended'])
  }
  t.same(await sequentialScans(), before, 'no batch read streams or events whole')
  const [grown] = await db.sql<{ version: number }[]>`select version::int from streams where stream_id = 'grown-1'`
  t.equal(grown!.version, 2, 'the batch moved the stream it appended to')
})

// sql/0029: a batch's custom plans cost less on paper than the generic ones (its arrays seen as constants), so without
// this the plan cache plans every statement anew on every call; the test above shows the generic plans stay on keys.
t.test('a batch is planned once per session, on keys only', async (t) => {
  const db = await testDatabase(t)
  const [row] = await db.sql<{ settings: string[] }[]>`
    select proconfig as settings from pg_proc where proname = 'append_events_batch'`
  t.ok(row, 'the function exists')
  for (const setting of ['plan_cache_mode=force_generic_plan', 'enable_seqscan=off', 'enable_bitmapscan=off', 'enable_hashjoin=off', 'enable_mergejoin=off']) {
    t.ok(row!.settings.includes(setting), setting)
  }
})
