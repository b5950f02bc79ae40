import type { Sql } from '../db/connect.js'

// An acknowledged append of this process wakes its log readers at once and, through them, other instances
// (SPEC "Subscribe": live within 1 s, typically milliseconds). The events core signals after every append
// it commits; the log watcher listens. Keyed by the database handle, so two stores in one process (tests)
// stay apart; an append inside a caller's transaction (a handle of its own) signals nothing: its commit is
// the caller's, and the watcher's poll finds it.
const listeners = new WeakMap<object, Set<() => void>>()

export const onAppended = (sql: Sql, listener: () => void): (() => void) => {
  const set = listeners.get(sql) ?? new Set()
  listeners.set(sql, set)
  set.add(listener)
  return () => set.delete(listener)
}

export const signalAppended = (sql: Sql): void => {
  for (const listener of listeners.get(sql) ?? []) listener()
}
