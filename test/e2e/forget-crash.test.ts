import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { testDatabase, type TestDatabase } from '../helpers/test-database.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'

// SPEC "Personal data", crash safety of a forget: a kill -9 at any point leaves the subject fully forgotten (its
// rebuilds resuming after the restart) or its key intact with nothing done. docs/personal-data.md, "Crash safety".
// four server starts and three kills, on a machine that may be busy
t.setTimeout(300_000)
const db = await testDatabase(t)
const projection = {
  source: { categories: ['customer'] },
  documentId: '$.streamId',
  handlers: { CustomerRegistered: { set: { name: '$.personalData.name', plan: '$.data.plan' } } },
}

const start = (): Promise<ServerProcess> => startServer(t, { DATABASE_URL: db.url! })

const seed = async (t: Test, server: ServerProcess): Promise<{ subject: string; stream: string }> => {
  const subject = `customer-${randomUUID().slice(0, 8)}`
  const stream = `customer-${randomUUID().slice(0, 8)}`
  const res = await server.request('POST', `/streams/${stream}/events`, { body: { events: [{ type: 'CustomerRegistered', data: { plan: 'gold' }, subject, personalData: { name: 'Ada' } }] } })
  t.equal(res.status, 201)
  t.equal((await server.request('PUT', `/streams/${stream}/snapshots/1`, { body: { state: { name: 'Ada' } } })).status, 201)
  await waitFor('projected', async () => (await server.request('GET', `/projections/customers/documents/${stream}`)).body?.document?.name === 'Ada')
  return { subject, stream }
}

// Forgotten whole (rebuild done, nothing left) or not at all (key, snapshot and reads as before).
const settled = async (t: Test, server: ServerProcess, database: TestDatabase, { subject, stream }: { subject: string; stream: string }): Promise<'forgotten' | 'intact'> => {
  const [key] = await database.sql<{ dataKey: Buffer | null }[]>`select data_key as "dataKey" from subject_keys where subject = ${subject}`
  if (key?.dataKey) {
    const rebuilds = await database.sql`select from subject_rebuilds where subject = ${subject}`
    t.equal(rebuilds.length, 0, 'intact: no rebuild recorded')
    t.equal((await server.request('GET', `/streams/${stream}/snapshots/latest`)).status, 200, 'intact: the snapshot stays')
    t.same((await server.request('GET', `/streams/${stream}/events`)).body.events[0].personalData, { name: 'Ada' })
    return 'intact'
  }
  await waitFor('the rebuild resumed and done', async () => (await server.request('GET', `/subjects/${subject}`)).body.pending?.length === 0, { timeoutMs: 60_000 })
  await waitFor('the document rebuilt', async () => {
    const document = (await server.request('GET', `/projections/customers/documents/${stream}`)).body?.document
    return document !== undefined && !('name' in document)
  }, { timeoutMs: 60_000 })
  t.equal((await server.request('GET', `/streams/${stream}/snapshots/latest`)).status, 404, 'forgotten: the snapshot is gone')
  t.equal((await server.request('GET', `/streams/${stream}/events`)).body.events[0].forgotten, true)
  return 'forgotten'
}

t.test('a forget whose process died after its commit is finished at the next start', async (t) => {
  let server = await start()
  t.equal((await server.request('PUT', '/projections/customers', { body: projection })).status, 201)
  const seeded = await seed(t, server)
  server.kill('SIGKILL')
  await server.waitForExit()
  // what the forget's first transaction commits (forget-subject.ts), without its second step
  await db.sql.begin(async (tx) => {
    await tx`update subject_keys set data_key = null, key_wrap = null, forgotten_at = now() where subject = ${seeded.subject}`
    await tx`insert into subject_rebuilds (tenant, subject, projection) values ('default', ${seeded.subject}, 'customers')`
    await tx`delete from stream_snapshots where stream_id = ${seeded.stream}`
  })
  server = await start()
  t.equal(await settled(t, server, db, seeded), 'forgotten')
  const [rebuild] = await db.sql<{ backfill: string | null }[]>`select backfill from subject_rebuilds where subject = ${seeded.subject}`
  t.ok(rebuild!.backfill, 'the rebuild was started by the restarted server')
  await server.close()
})

t.test('kill -9 at moments of a forget: forgotten whole or not at all', async (t) => {
  const outcomes: string[] = []
  let server = await start()
  for (const ms of [0, 4, 15]) {
    const seeded = await seed(t, server)
    const forget = server.request('DELETE', `/subjects/${seeded.subject}`).catch(() => undefined)
    await delay(ms)
    server.kill('SIGKILL')
    await forget
    await server.waitForExit()
    server = await start()
    outcomes.push(await settled(t, server, db, seeded))
  }
  await server.close()
  t.comment(`outcomes by kill delay: ${outcomes.join(' ')}`)
})
