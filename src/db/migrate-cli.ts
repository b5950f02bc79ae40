import { ConfigError, loadConfig } from '../config.js'
import { migrate } from './migrate.js'
import { openDatabase } from './open-database.js'

// `npm run migrate`: applies the migrations of sql/ to the configured database and exits, for
// upgrades that migrate before the new servers start (docs/operations.md). Servers also migrate at
// start-up, under the same advisory lock, so running both is safe.
const main = async (): Promise<void> => {
  const config = loadConfig()
  const database = await openDatabase(config)
  try {
    const applied = await migrate(database.sql)
    process.stdout.write(`${JSON.stringify({ ...database.where, migrationsApplied: applied })}\n`)
  } finally {
    await database.close()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof ConfigError ? error.message : error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
