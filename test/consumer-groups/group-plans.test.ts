import t from 'tap'
import { connect } from '../../src/db/connect.js'
import { buildTestApp } from '../helpers/test-app.js'
import { groupApi } from '../helpers/group-api.js'

// sql/0028: the statements of the consumer-group functions keep their plans for the session, and a group's tables
// start empty. Plans made while the group held a few streams must not read every stream row of the group once it
// holds thousands: one session polls and acks until its plans have settled, the group then grows to 20,000 streams
// (all caught up), and a poll and an ack of ten events must read about ten stream rows, not twenty thousand.
t.test('polls and acks keep reading the streams they touch by key after the group grows', async (t) => {
  const { app, db } = await buildTestApp(t)
  const api = groupApi(app)
  t.equal((await api.put('g', { source: { categories: ['job'] } })).statusCode, 201)
  // one session, so every call finds the plans the earlier ones left (the embedded database has but one)
  const session = db.url ? connect(db.url, { max: 1 }) : db.sql
  if (db.url) t.teardown(() => session.end({ timeout: 1 }))
  const head = async (): Promise<number> => (await db.sql<{ head: number }[]>`select coalesce(max(global_position), 0)::int as head from events`)[0]!.head
  const pollAndAck = async (): Promise<number> => {
    const leased = await session<{ position: number | null }[]>`
      select leased_position::int as position from consumer_group_poll('default', 'g', 100, 1000000, ${await head()}, true, 2000, 0)`
    const positions = leased.map((row) => row.position).filter((position): position is number => position !== null)
    const ids = await db.sql<{ id: string }[]>`select event_id::text as id from events where global_position = any(${positions}::bigint[])`
    const [{ acked }] = await session<{ acked: number }[]>`select consumer_group_ack('default', 'g', ${ids.map((row) => row.id)}::uuid[]) as acked`
    return acked
  }
  const appendTo = async (prefix: string, streams: number): Promise<void> => {
    for (let stream = 0; stream < streams; stream++) t.equal((await api.append(`job-${prefix}${stream}`, 1)).statusCode, 201)
  }
  for (let round = 0; round < 12; round++) {
    await appendTo(`young${round}x`, 2)
    t.equal(await pollAndAck(), 2, `young round ${round}: both events acked`)
  }
  const [{ id: groupId }] = await db.sql<{ id: string }[]>`select id::text from consumer_groups where name = 'g'`
  await db.sql`
    insert into consumer_group_streams (group_id, stream_id, next_position)
    select ${groupId}::bigint, 'job-grown' || n, null from generate_series(1, 20000) as n`
  const streamRowsRead = async (): Promise<number> => {
    await session`select pg_stat_force_next_flush()`
    await session`select pg_stat_clear_snapshot()`
    const [row] = await session<{ rows: number }[]>`
      select (coalesce(idx_tup_fetch, 0) + seq_tup_read)::int as rows from pg_stat_user_tables where relname = 'consumer_group_streams'`
    return row!.rows
  }
  await appendTo('late', 10)
  const before = await streamRowsRead()
  t.equal(await pollAndAck(), 10, 'the ten new events were leased and acked')
  const read = (await streamRowsRead()) - before
  t.ok(read < 1000, `a poll and an ack of ten events read ${read} stream rows of 20,000`)
})
