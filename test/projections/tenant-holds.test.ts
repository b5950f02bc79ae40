import t, { type Test } from 'tap'
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { connect, withDatabase, type Sql } from '../../src/db/connect.js'
import { listMigrations, migrate } from '../../src/db/migrate.js'
import { advanceHold, heldTenants, holdTenant, readHolds, resumeHolds } from '../../src/projections/tenant-holds.js'
import { seedProjection, setLivePosition } from '../helpers/document-seeds.js'
import { SERVER_URL, testDatabase } from '../helpers/test-database.js'

// The rules of holds on their own (docs/projection-failures.md "Why it is gap-safe"): every write checks the
// checkpoints it relies on, inside the caller's transaction.
const { sql } = await testDatabase(t)
const failure = (position: number) => ({ position, eventId: `e-${position}`, message: 'poison' })

t.test('a tenant is held only where the projection (or its own catch-up) stands right before the event', async (t) => {
  await seedProjection(sql, 'p1', { position: 9 })
  t.equal(await sql.begin((tx) => holdTenant(tx, 'p1', 1, 'acme', failure(11))), false, 'the checkpoint is not at 10: refused')
  t.equal(await sql.begin((tx) => holdTenant(tx, 'p1', 1, 'acme', failure(10))), true)
  t.match(await readHolds(sql, 'p1'), [{ tenant: 'acme', generation: 1, position: 9, failure: failure(10) }])
  // resumed and caught up to 15, then failing at 16: held again where its own checkpoint stands
  await sql.begin((tx) => resumeHolds(tx, 'p1', 'acme', false))
  await setLivePosition(sql, 'p1', 20)
  t.equal(await sql.begin((tx) => advanceHold(tx, 'p1', 1, 'acme', 9, 15, 20)), true)
  t.equal(await sql.begin((tx) => holdTenant(tx, 'p1', 1, 'acme', failure(18))), false, 'not right after its own checkpoint')
  t.equal(await sql.begin((tx) => holdTenant(tx, 'p1', 1, 'acme', failure(16))), true)
  t.match(await readHolds(sql, 'p1'), [{ tenant: 'acme', position: 15, failure: failure(16) }])
})

t.test('a catch-up moves its own checkpoint by compare-and-set, never past the projection’s', async (t) => {
  await seedProjection(sql, 'p2', { position: 50 })
  await sql`insert into projection_tenant_holds (projection, generation, tenant, position) values ('p2', 1, 'acme', 10)`
  const advance = (from: number, to: number, main: number) => sql.begin((tx) => advanceHold(tx, 'p2', 1, 'acme', from, to, main))
  t.equal(await advance(11, 20, 50), false, 'from a checkpoint it is not at')
  t.equal(await advance(10, 60, 60), false, 'to a projection checkpoint that is not the stored one')
  t.equal(await advance(10, 51, 50), false, 'past the projection')
  t.equal(await advance(10, 50, 50), true)
  await sql`update projection_tenant_holds set failure = ${sql.json(failure(51))} where projection = 'p2'`
  t.equal(await advance(50, 50, 50), false, 'a failed hold does not move')
})

t.test('a caught-up tenant rejoins in the batch that starts at its checkpoint; held ones stay out', async (t) => {
  await seedProjection(sql, 'p3', { position: 30 })
  await sql`
    insert into projection_tenant_holds (projection, generation, tenant, position, failure)
    values ('p3', 1, 'acme', 30, null), ('p3', 1, 'beta', 20, null), ('p3', 1, 'gamma', 30, ${sql.json(failure(31))})`
  t.same([...(await sql.begin((tx) => heldTenants(tx, 'p3', 1, 29)))].sort(), ['acme', 'beta', 'gamma'], 'a batch from elsewhere: nobody rejoins')
  t.same([...(await sql.begin((tx) => heldTenants(tx, 'p3', 1, 30)))].sort(), ['beta', 'gamma'], 'acme rejoins; beta is behind, gamma failed')
  t.same((await readHolds(sql, 'p3')).map((hold) => hold.tenant), ['beta', 'gamma'])
})

t.test('skip moves each failed hold past its event; restart only clears the failure', async (t) => {
  await seedProjection(sql, 'p4', { position: 40 })
  await sql`
    insert into projection_tenant_holds (projection, generation, tenant, position, failure)
    values ('p4', 1, 'acme', 9, ${sql.json(failure(10))}), ('p4', 1, 'beta', 19, ${sql.json(failure(20))})`
  t.match(await sql.begin((tx) => resumeHolds(tx, 'p4', 'acme', true)), [{ tenant: 'acme', failure: failure(10) }])
  t.match(await sql.begin((tx) => resumeHolds(tx, 'p4', undefined, false)), [{ tenant: 'beta', failure: failure(20) }])
  t.match(await readHolds(sql, 'p4'), [{ tenant: 'acme', position: 10, failure: null }, { tenant: 'beta', position: 19, failure: null }])
  t.same(await sql.begin((tx) => resumeHolds(tx, 'p4', undefined, true)), [], 'nothing failed any more')
})

// a database migrated up to `last`, for the state a migration finds
const databaseUpTo = async (t: Test, last: number): Promise<{ sql: Sql; rest: () => Promise<number[]> }> => {
  const name = `annalist_test_${randomBytes(6).toString('hex')}`
  const admin = connect(SERVER_URL, { max: 1 })
  await admin`create database ${admin(name)}`
  const db = connect(withDatabase(SERVER_URL, name), { max: 2 })
  t.teardown(async () => {
    await db.end({ timeout: 1 })
    await admin`drop database if exists ${admin(name)} with (force)`
    await admin.end({ timeout: 1 })
  })
  const early = mkdtempSync(path.join(tmpdir(), 'annalist-migrations-'))
  t.teardown(() => rmSync(early, { recursive: true, force: true }))
  for (const migration of await listMigrations()) if (migration.version <= last) copyFileSync(migration.file, path.join(early, path.basename(migration.file)))
  t.ok(readdirSync(early).length > 0)
  await migrate(db, early)
  return { sql: db, rest: () => migrate(db) }
}

t.test('a projection failed before holds existed becomes a hold of its event’s tenant and runs again', async (t) => {
  const { sql: old, rest } = await databaseUpTo(t, 15)
  await old`select append_events('acme', 'order-1', 'any', null, ${JSON.stringify([{ type: 'A', data: {} }, { type: 'B', data: {} }])}::text::json)`
  await seedProjection(old, 'legacy', { position: 1 })
  await old`update projections set status = 'failed', last_error = ${old.json({ position: 2, eventId: 'x', message: 'push skus: the document holds a non-array', generation: 1 } as never)} where name = 'legacy'`
  t.ok((await rest()).includes(16))
  const [row] = await old<{ status: string; lastError: unknown }[]>`select status, last_error as "lastError" from projections where name = 'legacy'`
  t.same(row, { status: 'running', lastError: null })
  t.match(await readHolds(old, 'legacy'), [{ tenant: 'acme', generation: 1, position: 1, failure: { position: 2, eventId: 'x', message: /push skus/ } }])
})
