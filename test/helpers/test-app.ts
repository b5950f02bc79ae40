import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { createServices, type Services } from '../../src/services.js'
import { loadOpenapi } from '../../src/http/openapi-document.js'
import { testDatabase, type TestDatabase } from './test-database.js'

export interface TestApp {
  app: FastifyInstance
  db: TestDatabase
  config: Config
  services: Services
}

// `max` caps the app's database connections (default 20), for tests that count them; `onRoute` is told of
// every route as it is added
export const buildTestApp = async (
  t: Test,
  env: Record<string, string> = {},
  { max, onRoute }: { max?: number; onRoute?: AppDeps['onRoute'] } = {},
): Promise<TestApp> => {
  const db = await testDatabase(t, { max })
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env })
  const services = await createServices(db.sql, config, { info: () => {}, warn: () => {} })
  await services.start()
  t.teardown(() => services.stop())
  const app = await buildApp({
    config,
    sql: db.sql,
    services,
    openapi: await loadOpenapi(),
    isReady: async () => true,
    logger: false,
    onRoute,
  })
  t.teardown(() => app.close())
  await app.ready()
  return { app, db, config, services }
}
