import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { LogHead } from '../../src/events/log-head.js'
import { LogWatcher } from '../../src/subscriptions/log-watcher.js'
import { loadOpenapi } from '../../src/http/openapi-document.js'
import { testDatabase, type TestDatabase } from './test-database.js'

export interface TestApp {
  app: FastifyInstance
  db: TestDatabase
  config: Config
}

export const buildTestApp = async (t: Test, env: Record<string, string> = {}): Promise<TestApp> => {
  const db = await testDatabase(t)
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env })
  const logHead = new LogHead(db.sql)
  const logWatcher = new LogWatcher(db.sql, logHead)
  await logWatcher.start()
  t.teardown(() => logWatcher.stop())
  const app = await buildApp({
    config,
    sql: db.sql,
    logHead,
    logWatcher,
    openapi: await loadOpenapi(),
    isReady: async () => true,
    logger: false,
  })
  t.teardown(() => app.close())
  await app.ready()
  return { app, db, config }
}
