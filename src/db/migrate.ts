import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import type { Sql } from './connect.js'
import { LOCK_CLASS } from './advisory-locks.js'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../sql/', import.meta.url))
const sourceMigrationsDir = fileURLToPath(new URL('../../sql/', import.meta.url))

// Two instances starting together must not both apply a migration: each one runs in its own
// transaction under the same transaction-scoped advisory lock and re-checks what is applied.

export interface Migration {
  version: number
  name: string
  file: string
}

export const listMigrations = async (dir?: string): Promise<Migration[]> => {
  const folder = dir ?? (await pickDir())
  const files = (await readdir(folder)).filter((file) => /^\d{4}-[a-z0-9-]+\.sql$/.test(file)).sort()
  return files.map((file) => ({ version: Number(file.slice(0, 4)), name: file.slice(5, -4), file: path.join(folder, file) }))
}

const pickDir = async (): Promise<string> => {
  for (const dir of [sourceMigrationsDir, MIGRATIONS_DIR]) {
    try {
      await readdir(dir)
      return dir
    } catch {}
  }
  throw new Error('migrations folder sql/ not found')
}

export const migrate = async (sql: Sql, dir?: string): Promise<number[]> => {
  const applied: number[] = []
  for (const migration of await listMigrations(dir)) {
    const text = await readFile(migration.file, 'utf8')
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${LOCK_CLASS.migrations})`
      await tx`
        create table if not exists annalist_migrations (
          version int primary key,
          name text not null,
          applied_at timestamptz not null default now()
        )`
      const [done] = await tx`select 1 as done from annalist_migrations where version = ${migration.version}`
      if (done) return
      await tx.unsafe(text)
      await tx`insert into annalist_migrations (version, name) values (${migration.version}, ${migration.name})`
      applied.push(migration.version)
    })
  }
  return applied
}
