import t from 'tap'
import type { Sql } from '../../src/db/connect.js'
import { checkLedger, deposits, LEDGER, ledgerDir } from '../helpers/ledger-projection.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { testDatabase } from '../helpers/test-database.js'
import { waitFor } from '../helpers/wait-for.js'
import { waitForSessionsToEnd } from '../helpers/server-sessions.js'

// A held tenant across SIGKILLs (docs/projection-failures.md): the hold outlives the process, the other
// tenant goes on under the next one, and a restart's catch-up killed half-way resumes in the next process
// where it stood: every event of each tenant applied once, in order.
const db = await testDatabase(t)
const { dir, fix } = ledgerDir(t)
const start = () => startServer(t, { DATABASE_URL: db.url!, PROJECTIONS_DIR: dir })

const deposit = async (server: ServerProcess, tenant: string, stream: string, events: ReturnType<typeof deposits>): Promise<number> => {
  const res = await server.request('POST', `/streams/${stream}/events`, { body: { events }, headers: { 'x-tenant-id': tenant } })
  if (res.status !== 201) throw new Error(`append answered ${res.status}: ${res.text}`)
  return res.body.lastPosition
}
const amounts = (count: number, from = 1) => Array.from({ length: count }, (_, i) => from + i)
const view = async (server: ServerProcess) => (await server.request('GET', `/projections/${LEDGER}`)).body
const hold = async (sql: Sql, tenant: string) =>
  (await sql<{ position: number; failed: boolean }[]>`select position, failure is not null as failed from projection_tenant_holds where projection = ${LEDGER} and tenant = ${tenant}`)[0]
const kill = async (server: ServerProcess) => {
  server.kill('SIGKILL')
  await server.waitForExit()
  await waitForSessionsToEnd(db.sql, server)
}

t.test('a hold survives SIGKILL, and a catch-up killed half-way resumes exactly where it stood', async (t) => {
  let server = await start()
  await deposit(server, 'acme', 'account-1', deposits([10]))
  const poison = await deposit(server, 'acme', 'account-1', deposits([100], 'until-fixed'))
  for (let round = 0; round < 5; round++) {
    await deposit(server, 'acme', 'account-1', deposits(amounts(1000)))
    await deposit(server, 'beta', 'account-1', deposits(amounts(100)))
  }
  await waitFor('acme held at its poison event', async () => (await hold(db.sql, 'acme'))?.failed === true, { timeoutMs: 60_000 })
  t.match(await hold(db.sql, 'acme'), { position: poison - 1 })

  await kill(server)
  server = await start()
  const betaLast = await deposit(server, 'beta', 'account-1', deposits(amounts(50)))
  const betaRead = await server.request('GET', `/projections/${LEDGER}/documents/account-1?waitFor=${betaLast}&timeoutMs=30000`, { headers: { 'x-tenant-id': 'beta' } })
  t.equal(betaRead.status, 200, 'the next process goes on with beta')
  t.match((await view(server)).failures, [{ tenant: 'acme', position: poison }], 'and still holds acme')
  await checkLedger(t, db.sql, 'beta', 'account-1')

  fix()
  t.equal((await server.request('POST', `/projections/${LEDGER}/restart`)).status, 200)
  // acme's new events arrive while it catches up: they wait for it, then follow in order
  void deposit(server, 'acme', 'account-1', deposits(amounts(20, 5000))).catch(() => undefined)
  const midway = await waitFor('acme’s catch-up under way', async () => {
    const now = await hold(db.sql, 'acme')
    return (now === undefined || now.position > poison - 1) && (now ?? 'done')
  }, { timeoutMs: 60_000, intervalMs: 2 })
  await kill(server)
  t.comment(midway === 'done' ? 'acme had caught up before the kill' : `killed with acme’s own checkpoint at ${midway.position} (held from ${poison - 1})`)

  server = await start()
  await deposit(server, 'acme', 'account-1', deposits(amounts(10, 9000)))
  await deposit(server, 'beta', 'account-1', deposits(amounts(10, 9000)))
  await waitFor('every tenant caught up', async () => {
    const every = await view(server)
    return every.lag === 0 && every.failures.length === 0 && every.status === 'running' && (await hold(db.sql, 'acme')) === undefined
  }, { timeoutMs: 60_000 })
  await checkLedger(t, db.sql, 'acme', 'account-1')
  await checkLedger(t, db.sql, 'beta', 'account-1')
})
