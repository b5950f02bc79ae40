import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { connect, withDatabase } from '../../src/db/connect.js'
import { createServices } from '../../src/services.js'
import { SERVER_URL } from './test-database.js'

// An app whose database does not exist: every query fails, so every route that reads or writes answers 500.
export const buildBrokenApp = async (t: Test, openapi: Record<string, unknown>): Promise<FastifyInstance> => {
  const sql = connect(withDatabase(SERVER_URL, `annalist_missing_${randomUUID().slice(0, 8)}`), { max: 1 })
  const config = loadConfig({ LOG_LEVEL: 'silent' })
  const services = await createServices(sql, config, { info: () => {}, warn: () => {} })
  const broken = await buildApp({ config, sql, services, openapi, isReady: async () => false, logger: false })
  t.teardown(async () => {
    await broken.close()
    await sql.end({ timeout: 1 })
  })
  return broken
}

export const LEAKS = /annalist_missing|postgres|select|at .*\.ts/i
