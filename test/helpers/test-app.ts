import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
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

// `pool` caps the app's database connections (default 20), for tests that count them
export const buildTestApp = async (t: Test, env: Record<string, string> = {}, pool?: { max: number }): Promise<TestApp> => {
  const db = await testDatabase(t, pool)
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
  })
  t.teardown(() => app.close())
  await app.ready()
  return { app, db, config, services }
}
