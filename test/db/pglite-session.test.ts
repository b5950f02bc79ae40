import t, { type Test } from 'tap'
import { PGlite } from '@electric-sql/pglite'
import { connect, type Sql } from '../../src/db/connect.js'
import { PgliteSession, startupMessage } from '../../src/db/pglite-session.js'
import { waitFor } from '../helpers/wait-for.js'

// One PGlite backend, and as many postgres.js instances on it as a test asks for.
const session = async (t: Test): Promise<(max: number) => Sql> => {
  const db = await PGlite.create()
  const shared = new PgliteSession(db, Buffer.from(await db.execProtocolRaw(startupMessage({ user: 'postgres', database: 'postgres' }))))
  const pools: Sql[] = []
  t.teardown(async () => {
    for (const sql of pools) await sql.end({ timeout: 1 })
    await db.close()
  })
  return (max) => {
    const sql = connect('postgres://postgres@embedded/postgres', { max, socket: shared.socket })
    pools.push(sql)
    return sql
  }
}

t.test('every pooled query gets its own answer under load', async (t) => {
  const sql = (await session(t))(10)
  const answers = await Promise.all(
    Array.from({ length: 400 }, async (_, i) => {
      const rows = i % 7 === 0 ? await sql`select ${i}::int as i, pg_sleep(0.001)` : await sql`select ${i}::int as i from generate_series(1, ${1 + (i % 5)})`
      return rows.map((row) => row.i)
    }),
  )
  t.same(answers, Array.from({ length: 400 }, (_, i) => Array.from({ length: i % 7 === 0 ? 1 : 1 + (i % 5) }, () => i)))
})

t.test('a transaction has the session to itself: read-modify-write without locks loses nothing', async (t) => {
  const sql = (await session(t))(10)
  await sql`create table counter (n int not null)`
  await sql`insert into counter values (0)`
  await Promise.all(
    Array.from({ length: 200 }, () =>
      sql.begin(async (tx) => {
        const [row] = await tx<{ n: number }[]>`select n from counter`
        // on a server under read committed, two of these would interleave here and lose an increment
        await new Promise((resolve) => setImmediate(resolve))
        await tx`update counter set n = ${row!.n + 1}`
      }),
    ),
  )
  t.same(await sql`select n from counter`, [{ n: 200 }])
})

t.test('a failed transaction rolls back and frees the session', async (t) => {
  const sql = (await session(t))(4)
  await sql`create table items (id int primary key)`
  const failed = sql.begin(async (tx) => {
    await tx`insert into items values (1)`
    await tx`insert into items values (1)`
  })
  await t.rejects(failed, { code: '23505' })
  t.same(await sql`select count(*)::int as n from items`, [{ n: 0 }])
})

t.test('a connection that dies inside a transaction leaves nothing open behind it', async (t) => {
  const open = await session(t)
  const sql = open(4)
  const doomed = open(1)
  await sql`create table items (id int primary key)`
  let inside!: () => void
  const entered = new Promise<void>((resolve) => (inside = resolve))
  const stuck = doomed
    .begin(async (tx) => {
      await tx`insert into items values (1)`
      inside()
      await new Promise(() => {})
    })
    .catch((error: Error) => error)
  await entered
  await doomed.end({ timeout: 0 })
  t.match(await stuck, { code: /^CONNECTION_(CLOSED|DESTROYED)$/ })
  t.same(await sql`select count(*)::int as n from items`, [{ n: 0 }], 'its insert was rolled back and the session serves others')
  // the dead transaction wrote, so it had an xid; a statement in a transaction of its own has none yet
  t.same(await sql`select pg_current_xact_id_if_assigned() is null as idle`, [{ idle: true }], 'no transaction is left open on the session')
})

t.test('NOTIFY reaches every LISTEN on the session at commit, and an UNLISTEN silences only its own', async (t) => {
  const open = await session(t)
  const a = open(4)
  const b = open(4)
  const heardA: string[] = []
  const heardB: string[] = []
  const listenA = await a.listen('news', (payload) => heardA.push(payload))
  await b.listen('news', (payload) => heardB.push(payload))
  await a`select pg_notify('news', 'plain')`
  await b.begin(async (tx) => {
    await tx`select pg_notify('news', 'committed')`
  })
  await b
    .begin(async (tx) => {
      await tx`select pg_notify('news', 'rolled back')`
      throw new Error('roll back')
    })
    .catch(() => undefined)
  await waitFor('both listeners to hear both notifications', () => heardA.length === 2 && heardB.length === 2)
  t.same(heardA, ['plain', 'committed'])
  t.same(heardB, ['plain', 'committed'])

  await listenA.unlisten()
  await a`select pg_notify('news', 'after unlisten')`
  await waitFor('b to hear it', () => heardB.length === 3)
  t.same(heardB.at(-1), 'after unlisten', 'the other listener still hears')
  t.same(heardA, ['plain', 'committed'], 'the one that left hears nothing more')
})
