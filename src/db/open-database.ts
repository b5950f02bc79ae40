import type { Config } from '../config.js'
import { connect, databaseName, ensureDatabase, type Sql } from './connect.js'
import { openEmbedded } from './embedded.js'

export interface Database {
  sql: Sql
  // for the start-up log: which database, and where its data lives
  where: Record<string, unknown>
  close(): Promise<void>
}

// DATABASE_URL names a PostgreSQL server; without it the embedded database keeps its files in DATA_DIR.
export const openDatabase = async (config: Pick<Config, 'DATABASE_URL' | 'DATA_DIR' | 'DATABASE_POOL_SIZE'>): Promise<Database> => {
  const max = config.DATABASE_POOL_SIZE
  if (!config.DATABASE_URL) {
    const embedded = await openEmbedded({ dataDir: config.DATA_DIR, max })
    return { sql: embedded.sql, where: { database: 'embedded (PGlite)', dataDir: embedded.dataDir }, close: embedded.close }
  }
  const url = config.DATABASE_URL
  await ensureDatabase(url)
  const sql = connect(url, { max })
  return {
    sql,
    where: { database: 'postgresql', host: new URL(url).host, name: databaseName(url) },
    close: () => sql.end({ timeout: 5 }),
  }
}
