import t from 'tap'
import postgres from 'postgres'
import { testDatabase } from '../helpers/test-database.js'

// patches/postgres+3.4.9.patch: postgres.js 3.4.9 reserves a transaction's connection only when its BEGIN goes out
// with the pipeline not full and the socket not backed up. Otherwise the transaction's own queries fail
// (`c.queue` of undefined), and the connection returns to the pool still inside the open transaction: pooled
// appends ran in it, were acknowledged, and were lost when it aborted. max_pipeline 1 and one warm connection
// make the condition certain: the BEGIN queues behind a running query.
t.test('a transaction begun behind a running query keeps its connection, and pooled queries stay outside it', { skip: process.env.ANNALIST_TEST_DATABASE === 'embedded' ? 'PostgreSQL client behaviour' : false }, async (t) => {
  const db = await testDatabase(t)
  const sql = postgres(db.url!, { max: 1, max_pipeline: 1, onnotice: () => {} })
  t.teardown(() => sql.end({ timeout: 1 }))
  await sql`create table marks (n int)`

  for (let round = 0; round < 20; round++) {
    // on the wire before the BEGIN: the BEGIN is pipelined behind it
    const running = sql`select pg_sleep(0.01)`.execute()
    const transaction = sql.begin(async (tx) => {
      await tx`insert into marks values (${round})`
      const [row] = await tx<{ inside: boolean }[]>`select pg_current_xact_id_if_assigned() is not null as inside`
      return row!.inside
    })
    // asked for while the transaction runs: it must run after it, on its own, never inside it
    const pooled = sql<{ inside: boolean }[]>`select pg_current_xact_id_if_assigned() is not null as inside`.execute()
    await running
    t.equal(await transaction, true, `round ${round}: the transaction ran its queries in itself and committed`)
    t.equal((await pooled)[0]!.inside, false, `round ${round}: the pooled query ran outside any transaction`)
  }
  const [{ count }] = await sql<{ count: number }[]>`select count(*)::int as count from marks`
  t.equal(count, 20, 'every transaction committed')
  const [{ open }] = await sql<{ open: number }[]>`
    select count(*)::int as open from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`
  t.equal(open, 0, 'no connection was left inside a transaction')
})
