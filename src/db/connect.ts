import type { Duplex } from 'node:stream'
import postgres from 'postgres'

export type Sql = postgres.Sql<Record<string, never>>
// what a function that only queries takes: the pool or a transaction
export type Tx = postgres.TransactionSql<Record<string, never>>

export interface ConnectOptions {
  max?: number
  applicationName?: string
  // an in-process transport instead of TCP (the embedded database, src/db/embedded.ts)
  socket?: () => Duplex
}

// The one place where Postgres types meet JS: int8 → number (exact to 2^53, far beyond any position or
// version this store reaches) and timestamptz → ISO-8601 string, so no caller converts by hand.
const types = {
  bigint: {
    to: 20,
    from: [20],
    serialize: (value: number | bigint) => String(value),
    parse: (value: string) => Number(value),
  },
  timestamptz: {
    to: 1184,
    from: [1184],
    serialize: (value: string | Date) => (value instanceof Date ? value.toISOString() : value),
    parse: (value: string) => new Date(value).toISOString(),
  },
}

export const connect = (url: string, options: ConnectOptions = {}): Sql => {
  const settings = {
    max: options.max ?? 20,
    // postgres.js's own default (100). With max_pipeline: 1, 3.4.9 was seen under mixed load with sql.begin
    // running a pooled query inside another's open transaction (a deadlock, then "current transaction is
    // aborted" for every later query on that connection: bench/projections.ts, 5,438 errors in 10 s);
    // with the default, none. 0 breaks sql.begin (UNSAFE_TRANSACTION). Untyped in 3.4.x.
    max_pipeline: 100,
    types,
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? 'annalist', TimeZone: 'UTC' },
    ...(options.socket ? { socket: options.socket } : {}),
  }
  return postgres(url, settings as postgres.Options<typeof types>) as unknown as Sql
}

export const databaseName = (url: string): string => decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres'

export const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = '/' + encodeURIComponent(database)
  return parsed.toString()
}

const SAFE_DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/

// A newcomer's first start should not need a CREATE DATABASE by hand.
export const ensureDatabase = async (url: string): Promise<boolean> => {
  const name = databaseName(url)
  const admin = connect(withDatabase(url, 'postgres'), { max: 1 })
  try {
    const [row] = await admin`select 1 as present from pg_database where datname = ${name}`
    if (row) return false
    if (!SAFE_DATABASE_NAME.test(name)) throw new Error(`database "${name}" does not exist`)
    await admin`create database ${admin(name)}`.catch((error: { code?: string }) => {
      if (error.code !== '42P04') throw error
    })
    return true
  } finally {
    await admin.end({ timeout: 5 })
  }
}
