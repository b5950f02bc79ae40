import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { openDatabase } from './db/open-database.js'
import { listMigrations, migrate } from './db/migrate.js'
import { createServices } from './services.js'
import { loadOpenapi } from './http/openapi-document.js'
import { Metrics } from './observability/metrics.js'
import { databaseLine, migrationsLine, urlsLine, type StartUpLine } from './observability/start-up-report.js'

const start = async (config: Config): Promise<void> => {
  const database = await openDatabase(config)
  const sql = database.sql
  let migrated = false
  const isReady = async (): Promise<boolean> => migrated && (await sql`select 1`.then(() => true, () => false))
  // services log through the app's logger, which exists once the app is built
  const log = { info: (object: object, message: string) => app.log.info(object, message), warn: (object: object, message: string) => app.log.warn(object, message) }
  const services = await createServices(sql, config, log)
  const metrics = new Metrics(sql, services.logHead, { poolSize: config.DATABASE_POOL_SIZE })
  metrics.collectProcessMetrics()
  const app = await buildApp({ config, sql, services, openapi: await loadOpenapi(), isReady, metrics })
  const applied = await migrate(sql)
  await services.start()
  migrated = true
  // the fields under `startUp`, which the readable format leaves out: its message already says them
  const say = ({ fields, message }: StartUpLine): void => app.log.info({ startUp: fields }, message)
  say(databaseLine(database.where))
  say(migrationsLine(applied, (await listMigrations()).map(({ version }) => version)))
  if (!config.API_KEYS) app.log.warn('no API keys configured: the server is open and every caller acts as admin')
  else app.log.info({ keys: config.API_KEYS.split(',').length }, 'API keys configured: every route but /health/*, /openapi.json, /docs and / needs one')
  // SPEC "Personal data": without a master key data keys are stored as they are, and the start-up log says so
  if (!config.ENCRYPTION_KEY) app.log.warn('no ENCRYPTION_KEY configured: the data keys of personal data are stored unwrapped')

  let closing = false
  const shutdown = async (signal: string): Promise<void> => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'draining')
    const timer = setTimeout(() => {
      app.log.error('drain timed out')
      process.exit(1)
    }, config.SHUTDOWN_TIMEOUT_MS)
    // close() stops accepting, waits for in-flight requests, then the pool ends after their queries
    await app.close()
    await services.stop()
    await database.close()
    clearTimeout(timer)
    app.log.info('closed')
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))

  say(urlsLine(await app.listen({ host: config.HOST, port: config.PORT })))
}

const main = async (): Promise<void> => {
  let config: Config
  try {
    config = loadConfig()
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(error.message + '\n')
      process.exit(1)
    }
    throw error
  }
  await start(config).catch((error: Error) => {
    process.stderr.write(`annalist: could not start: ${error.message}\n`)
    process.exit(1)
  })
}

await main()
