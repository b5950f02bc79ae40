import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { connect, type Sql } from './connect.js'
import { lockFolder } from './folder-lock.js'
import { PgliteSession, startupMessage } from './pglite-session.js'

export interface EmbeddedDatabase {
  sql: Sql
  // where the files live, or undefined for an in-memory database (tests)
  dataDir: string | undefined
  close(): Promise<void>
}

// postgres.js needs a URL; the socket option means nothing is ever dialled
const EMBEDDED_URL = 'postgres://postgres@embedded/postgres'

// PostgreSQL compiled to WebAssembly (PGlite), in this process, its files in DATA_DIR/pglite. What
// differs from a server, and where it is handled:
// - one backend session: the pool shares it through PgliteSession, a whole query or transaction at a
//   time, so transactions run one after another and no transaction is ever open beside another;
// - gap safety holds trivially: observe_log_head runs in its own transaction, so every transaction
//   that took a position has ended by then, and it finds no other backend in pg_stat_activity;
// - session state is shared: the projection runner's advisory locks all land on this one session,
//   which is right, since the folder lock makes this process the only instance;
// - LISTEN/NOTIFY is routed inside PgliteSession; statement_timeout is not enforced;
// - commits reach the files without fsync: they survive a killed process, not a machine crash.
export const openEmbedded = async (options: { dataDir?: string; max?: number } = {}): Promise<EmbeddedDatabase> => {
  const dataDir = options.dataDir === undefined ? undefined : path.resolve(options.dataDir)
  let release = (): void => {}
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true })
    release = lockFolder(dataDir)
  }
  try {
    const db = await PGlite.create(dataDir ? path.join(dataDir, 'pglite') : undefined)
    const startup = startupMessage({ user: 'postgres', database: 'postgres', application_name: 'annalist', TimeZone: 'UTC' })
    const session = new PgliteSession(db, Buffer.from(await db.execProtocolRaw(startup)))
    const sql = connect(EMBEDDED_URL, { max: options.max, socket: session.socket })
    return {
      sql,
      dataDir,
      async close() {
        await sql.end({ timeout: 5 })
        await db.close()
        release()
      },
    }
  } catch (error) {
    release()
    throw error
  }
}
