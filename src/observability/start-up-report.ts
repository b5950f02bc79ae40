// The lines a person starting the server reads first: where to point a client or a browser, which database
// is used (never with its credentials), and what the migrations did. Fields for machines, words for people.

export interface StartUpLine {
  fields: Record<string, unknown>
  message: string
}

// a server bound to every interface is reached on this machine as localhost
const reachable = (address: string): string => address.replace(/\/\/(0\.0\.0\.0|\[::\])(?=:)/, '//localhost')

export const urlsLine = (address: string): StartUpLine => {
  const api = reachable(address)
  const urls = { api, docs: `${api}/docs`, dashboard: `${api}/` }
  return { fields: urls, message: `ready: API ${urls.api} · API reference ${urls.docs} · dashboard ${urls.dashboard}` }
}

export const databaseLine = (where: Record<string, unknown>): StartUpLine => {
  const text = where.dataDir !== undefined
    ? `embedded PostgreSQL (PGlite), data in ${String(where.dataDir)}`
    : `PostgreSQL at ${String(where.host)}, database ${String(where.name)}`
  return { fields: where, message: `database: ${text}` }
}

export const migrationsLine = (applied: number[], known: number[]): StartUpLine => {
  const latest = known.length === 0 ? 'none' : String(Math.max(...known)).padStart(4, '0')
  const fields = { migrationsApplied: applied, schemaVersion: latest }
  if (applied.length === 0) return { fields, message: `migrations: the schema was already up to date (${latest})` }
  const count = applied.length === 1 ? '1 migration' : `${applied.length} migrations`
  const whole = applied.length === known.length ? 'a new database' : 'an older schema'
  return { fields, message: `migrations: applied ${count} to ${whole}, the schema is now up to date (${latest})` }
}
