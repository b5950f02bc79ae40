import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { connect, withDatabase, type Sql } from '../../src/db/connect.js'
import { openEmbedded } from '../../src/db/embedded.js'
import { migrate } from '../../src/db/migrate.js'

export const SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

// `npm test` runs the core files a second time with ANNALIST_TEST_DATABASE=embedded (test/run.ts)
export const EMBEDDED = process.env.ANNALIST_TEST_DATABASE === 'embedded'

export interface TestDatabase {
  // undefined on the embedded database, which has no address
  url: string | undefined
  name: string
  sql: Sql
}

// A fresh, migrated database per test file, dropped WITH (FORCE) when the file ends (emmett's pattern);
// on the embedded database, a fresh in-memory PGlite.
export const testDatabase = async (t: Test, options: { max?: number } = {}): Promise<TestDatabase> => {
  if (EMBEDDED) return embeddedDatabase(t, options)
  const name = `annalist_test_${randomBytes(6).toString('hex')}`
  const admin = connect(SERVER_URL, { max: 1 })
  await admin`create database ${admin(name)}`
  const url = withDatabase(SERVER_URL, name)
  const sql = connect(url, { max: options.max ?? 20 })
  t.teardown(async () => {
    await sql.end({ timeout: 1 })
    await admin`drop database if exists ${admin(name)} with (force)`
    await admin.end({ timeout: 1 })
  })
  await migrate(sql)
  return { url, name, sql }
}

const embeddedDatabase = async (t: Test, options: { max?: number }): Promise<TestDatabase> => {
  const db = await openEmbedded({ max: options.max ?? 20 })
  t.teardown(() => db.close())
  await migrate(db.sql)
  return { url: undefined, name: 'embedded', sql: db.sql }
}
