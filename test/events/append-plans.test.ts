import t from 'tap'
import { connect } from '../../src/db/connect.js'
import { appendBatch, type PendingAppend } from '../../src/events/append-call.js'
import { testDatabase } from '../helpers/test-database.js'

// sql/0026: the statements of the append functions keep their plans for the session, and a plan made while `streams`
// was nearly empty must not read the whole table once it is not. One session appends to new streams until its plans
// have settled, the store then grows by 20,000 streams, and its next appends must not scan `streams` whole.
const pending = (streamId: string): PendingAppend => ({
  tenant: 'default',
  streamId,
  kind: 'any',
  version: null,
  count: 1,
  eventIds: [],
  events: '[{"type":"OrderPlaced","data":{"total":1}}]',
})

t.test('batches keep reading the streams they touch by key after the store grows', async (t) => {
  const db = await testDatabase(t)
  // one session, so every call finds the plans the earlier ones left (the embedded database has but one)
  const session = db.url ? connect(db.url, { max: 1 }) : db.sql
  if (db.url) t.teardown(() => session.end({ timeout: 1 }))
  const appendTo = (names: string[]) => appendBatch(session, names.map((name) => [pending(name)]))
  for (let call = 0; call < 12; call++) await appendTo([`young-${call}-a`, `young-${call}-b`])
  await db.sql`
    insert into streams (tenant, stream_id, category, version, created_at, updated_at)
    select 'default', 'grown-' || n, 'grown', 1, now(), now() from generate_series(1, 20000) as n`
  const sequentialScans = async (): Promise<number> => {
    await session`select pg_stat_force_next_flush()`
    await session`select pg_stat_clear_snapshot()`
    const [row] = await session<{ scans: number }[]>`select seq_scan::int as scans from pg_stat_user_tables where relname = 'streams'`
    return row!.scans
  }
  const before = await sequentialScans()
  for (let call = 0; call < 10; call++) {
    const rows = await appendTo([`grown-${call + 1}`, `old-${call}-a`, `young-${call}-a`])
    t.same(rows.map(([row]) => row!.outcome), ['appended', 'appended', 'appended'])
  }
  t.equal(await sequentialScans(), before, 'no batch read streams whole')
  const [grown] = await db.sql<{ version: number }[]>`select version::int from streams where stream_id = 'grown-1'`
  t.equal(grown!.version, 2, 'the batch moved the stream it appended to')
})
