import { connect as tcp } from 'node:net'
import { Duplex } from 'node:stream'
import t from 'tap'
import postgres from 'postgres'
import { testDatabase } from '../helpers/test-database.js'

// patches/postgres+3.4.9.patch: postgres.js 3.4.9 counts a query's rows in a counter that only a CommandComplete
// resets. A query that failed part-way through its rows left the count behind, and the next query on that connection
// was answered with that many empty slots ahead of its own rows: `rows[0]` undefined, `rows.length` too large. The
// shared read of the subscription feed, answered so, threw while it handed the batch out and stepped over it
// (test/subscriptions/live-feed.test.ts, "empty slots").
const skip = process.env.ANNALIST_TEST_DATABASE === 'embedded' ? 'PostgreSQL client behaviour' : false

const exactly = (rows: unknown[]): { length: number; present: number } => ({ length: rows.length, present: Object.keys(rows).length })

t.test('a query that fails part-way through its rows leaves the next query its own rows, from the first', { skip }, async (t) => {
  const db = await testDatabase(t)
  const sql = postgres(db.url!, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end({ timeout: 1 }))
  // four rows go out before the fifth divides by zero
  const failed = await sql`select case when n < 5 then n else 1 / (n - n) end as n from generate_series(1, 10) as n`.then(
    () => 'answered',
    (error: { code?: string }) => error.code,
  )
  t.equal(failed, '22012', 'the query failed on its fifth row')
  const rows = await sql<{ n: number }[]>`select n from generate_series(1, 3) as n`
  t.same(exactly(rows), { length: 3, present: 3 }, 'the next query has three rows and no empty slot')
  t.same([...rows], [{ n: 1 }, { n: 2 }, { n: 3 }])
})

// What a terminated backend sends: an ErrorResponse FATAL 57P01; then the connection closes.
const terminated = (): Buffer => {
  const body = Buffer.from('SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0')
  const head = Buffer.alloc(5)
  head.write('E', 0)
  head.writeUInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

// A connection to the database that, for its first session only, passes five rows of the array-type fetch postgres.js
// makes after the startup and then answers as a backend the database terminated at that moment.
const dyingDuringTypeFetch = (host: string, port: number) => {
  let sessions = 0
  return async (): Promise<Duplex> => {
    const real = tcp(port, host)
    await new Promise((resolve, reject) => real.once('connect', resolve).once('error', reject))
    const dies = sessions++ === 0
    let buffered = Buffer.alloc(0)
    let typeRows = -1
    const socket = new Duplex({
      read() {},
      write: (chunk, _encoding, done) => void real.write(chunk, done),
      final: (done) => (real.end(), done()),
      destroy: (error, done) => (real.destroy(), done(error)),
    })
    real.on('data', (data: Buffer) => {
      buffered = Buffer.concat([buffered, data])
      while (buffered.length >= 5 && buffered.length >= buffered.readUInt32BE(1) + 1) {
        const message = buffered.subarray(0, buffered.readUInt32BE(1) + 1)
        buffered = buffered.subarray(message.length)
        if (message[0] === 0x54 && message.includes('typarray\0')) typeRows = 0
        if (dies && message[0] === 0x44 && typeRows >= 0 && ++typeRows > 5) {
          socket.push(terminated())
          real.destroy()
          return
        }
        socket.push(message)
      }
    })
    real.on('close', () => socket.destroy())
    real.on('error', (error) => socket.destroy(error))
    return socket
  }
}

t.test('a session terminated while it fetches array types: its query runs on the next session, whose queries get their own rows', { skip }, async (t) => {
  const db = await testDatabase(t)
  const { hostname, port } = new URL(db.url!)
  const sql = postgres(db.url!, { max: 1, onnotice: () => {}, socket: dyingDuringTypeFetch(hostname, Number(port)) })
  t.teardown(() => sql.end({ timeout: 1 }))
  // (an unhandled rejection of the type fetch fails this test through tap)
  const first = await sql<{ one: number }[]>`select 1 as one`.then(
    (rows) => [...rows],
    (error: { code?: string }) => error.code,
  )
  t.same(first, [{ one: 1 }], 'the query that started the session ran on the next one')
  const rows = await sql<{ n: number }[]>`select n from generate_series(1, 3) as n`
  t.same(exactly(rows), { length: 3, present: 3 }, 'the next query has three rows and no empty slot')
  t.same([...rows], [{ n: 1 }, { n: 2 }, { n: 3 }])
})
