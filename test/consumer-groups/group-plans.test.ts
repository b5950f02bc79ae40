import t from 'tap'
import { connect } from '../../src/db/connect.js'
import { buildTestApp } from '../helpers/test-app.js'
import { groupApi } from '../helpers/group-api.js'

// The statements of the consumer-group functions keep their plans for the session, and a group's tables start empty.
// One session polls and acks on a young group until its plans have settled; the group then grows, and a poll and an
// ack of ten events must read about ten rows, not the whole group.
const youngGroup = async (t: Tap.Test) => {
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
    // what autovacuum does early in a busy group's life: statistics of a table of a few rows
    if (round === 1) await db.sql`vacuum analyze consumer_group_events, consumer_group_streams`
  }
  const [{ id: groupId }] = await db.sql<{ id: string }[]>`select id::text from consumer_groups where name = 'g'`
  const rowsRead = async (table: string): Promise<number> => {
    await session`select pg_stat_force_next_flush()`
    await session`select pg_stat_clear_snapshot()`
    const [row] = await session<{ rows: number }[]>`
      select (coalesce(idx_tup_fetch, 0) + seq_tup_read)::int as rows from pg_stat_user_tables where relname = ${table}`
    return row!.rows
  }
  return { db, groupId, pollAndAck, appendTo, rowsRead }
}

// sql/0028: plans made while the group held a few streams read every stream row of the group to find the few a poll
// or an ack touched.
t.test('polls and acks keep reading the streams they touch by key after the group grows', async (t) => {
  const { db, groupId, pollAndAck, appendTo, rowsRead } = await youngGroup(t)
  await db.sql`
    insert into consumer_group_streams (group_id, stream_id, next_position)
    select ${groupId}::bigint, 'job-grown' || n, null from generate_series(1, 20000) as n`
  await appendTo('late', 10)
  const before = await rowsRead('consumer_group_streams')
  t.equal(await pollAndAck(), 10, 'the ten new events were leased and acked')
  const read = (await rowsRead('consumer_group_streams')) - before
  t.ok(read < 1000, `a poll and an ack of ten events read ${read} stream rows of 20,000`)
})

// sql/0030: plans made while the group held a few event rows read the whole table wherever they looked up a stream's
// pending events or an acked id. Parked events stay in the table until replayed or deleted.
t.test('polls and acks keep reading the events they touch by key after the group grows', async (t) => {
  const { db, groupId, pollAndAck, appendTo, rowsRead } = await youngGroup(t)
  await db.sql`
    insert into consumer_group_streams (group_id, stream_id, next_position)
    select ${groupId}::bigint, 'job-parked' || n, null from generate_series(1, 20000) as n`
  await db.sql`
    insert into consumer_group_events (group_id, global_position, stream_id, event_id, event_bytes, state, attempts, parked_at)
    select ${groupId}::bigint, 1000000 + n, 'job-parked' || n, gen_random_uuid(), 100, 'parked', 5, now()
      from generate_series(1, 20000) as n`
  await appendTo('late', 10)
  const before = await rowsRead('consumer_group_events')
  t.equal(await pollAndAck(), 10, 'the ten new events were leased and acked')
  const read = (await rowsRead('consumer_group_events')) - before
  t.ok(read < 1000, `a poll and an ack of ten events read ${read} event rows of 20,000`)
})
