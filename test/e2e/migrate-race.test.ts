import t, { type Test } from 'tap'
import { randomBytes, randomUUID } from 'node:crypto'
import { connect, withDatabase } from '../../src/db/connect.js'
import { listMigrations } from '../../src/db/migrate.js'
import { SERVER_URL } from '../helpers/test-database.js'
import { spawnServer } from '../helpers/server-process.js'

const ROUNDS = 2

// Like testDatabase(t), but left unmigrated: the servers under test must do it.
const bareDatabase = async (t: Test): Promise<string> => {
  const name = `annalist_test_${randomBytes(6).toString('hex')}`
  const admin = connect(SERVER_URL, { max: 1 })
  await admin`create database ${admin(name)}`
  t.teardown(async () => {
    await admin`drop database if exists ${admin(name)} with (force)`
    await admin.end({ timeout: 1 })
  })
  return withDatabase(SERVER_URL, name)
}

for (let round = 1; round <= ROUNDS; round++) {
  t.test(`two servers starting together on an unmigrated database both become ready and apply each migration once (round ${round})`, async (t) => {
    const url = await bareDatabase(t)
    const migrations = await listMigrations()
    t.ok(migrations.length > 0, 'there are migrations to race over')

    const servers = [spawnServer(t, { DATABASE_URL: url }), spawnServer(t, { DATABASE_URL: url })]
    await Promise.all(servers.map((server) => server.ready()))

    const sql = connect(url, { max: 1 })
    t.teardown(() => sql.end({ timeout: 1 }))
    const rows = await sql<{ version: number; name: string }[]>`select version, name from annalist_migrations order by version`
    t.same(rows, migrations.map(({ version, name }) => ({ version, name })), 'the migrations table lists each migration exactly once')

    // each process says which migrations it applied: together they are all of them, and none twice
    const applied = servers.map((server) => {
      const line = server.logs().find((entry) => String(entry.msg).startsWith('migrations: '))
      t.ok(line, `server ${server.pid} logged the migrations it applied`)
      return ((line?.startUp as { migrationsApplied?: number[] } | undefined)?.migrationsApplied ?? []) as number[]
    })
    t.same([...applied.flat()].sort((a, b) => a - b), migrations.map(({ version }) => version), 'every migration was applied by exactly one of the two')

    // both serve requests against the schema they raced to create
    for (const [index, server] of servers.entries()) {
      const streamId = `race-${index}`
      const append = await server.request('POST', `/streams/${streamId}/events`, {
        body: { expectedVersion: 'no_stream', events: [{ eventId: randomUUID(), type: 'Started', data: { index } }] },
      })
      t.equal(append.status, 201, `server ${index} appends`)
      const read = await servers[1 - index]!.request('GET', `/streams/${streamId}/events`)
      t.equal(read.body?.events?.length, 1, `the other server reads what server ${index} appended`)
    }
  })
}
