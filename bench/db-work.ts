import type { Sql } from '../src/db/connect.js'

// What Postgres did for the server during a span, from its statistics views (flushed by each backend
// about once a second, so short spans are approximate). Function timings need track_functions, which
// the bench sets on its own database.
export interface DbWork {
  transactions: number
  functions: Record<string, { calls: number; ms: number }>
}

interface Snapshot {
  transactions: number
  functions: Record<string, { calls: number; ms: number }>
}

const snapshot = async (sql: Sql): Promise<Snapshot> => {
  const [database] = await sql<{ transactions: number }[]>`
    select xact_commit + xact_rollback as transactions
      from pg_stat_database
     where datname = current_database()`
  const rows = await sql<{ name: string; calls: number; ms: number }[]>`
    select funcname as name, calls, total_time as ms
      from pg_stat_user_functions`
  return {
    transactions: database?.transactions ?? 0,
    functions: Object.fromEntries(rows.map((row) => [row.name, { calls: row.calls, ms: row.ms }])),
  }
}

export const startDbWork = async (sql: Sql): Promise<() => Promise<DbWork | undefined>> => {
  const start = await snapshot(sql)
  return async () => {
    const end = await snapshot(sql)
    const functions: DbWork['functions'] = {}
    for (const [name, after] of Object.entries(end.functions)) {
      const before = start.functions[name] ?? { calls: 0, ms: 0 }
      if (after.calls > before.calls) functions[name] = { calls: after.calls - before.calls, ms: after.ms - before.ms }
    }
    return { transactions: end.transactions - start.transactions, functions }
  }
}
