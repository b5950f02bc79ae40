import type { Sql } from '../../src/db/connect.js'
import type { ServerProcess } from './server-process.js'
import { waitFor } from './wait-for.js'

// A server's database sessions (by its application_name), for tests that drop them as a database restart or a
// network fault would.

// Its sessions' pids, only those whose latest statement matches `query` (ilike) when one is given.
export const sessionPids = async (sql: Sql, server: ServerProcess, query = '%'): Promise<number[]> => {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity where application_name = ${server.applicationName} and query ilike ${query} order by pid`
  return rows.map((row) => row.pid)
}

// Terminates exactly these pids and returns those it did. Two steps, so the terminating call only ever sees the
// pids chosen (a filter in the same query may be evaluated after it, terminating every session in the cluster).
export const terminateSessions = async (sql: Sql, pids: number[]): Promise<number[]> => {
  const rows = await sql<{ pid: number }[]>`
    select pid from unnest(${pids}::int[]) as pid where pg_terminate_backend(pid) order by pid`
  return rows.map((row) => row.pid)
}

export const sessionsOf = async (sql: Sql, server: ServerProcess): Promise<number> => (await sessionPids(sql, server)).length

// A killed server's backends may still be finishing a statement; once they are gone nothing of it can commit.
export const waitForSessionsToEnd = (sql: Sql, server: ServerProcess): Promise<true> =>
  waitFor(`the database sessions of ${server.applicationName} to end`, async () => (await sessionsOf(sql, server)) === 0, { timeoutMs: 30_000, intervalMs: 50 })
