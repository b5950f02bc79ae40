import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createServices } from '../../src/services.js'
import { loadOpenapi } from '../../src/http/openapi-document.js'
import { testDatabase } from '../helpers/test-database.js'

t.test('live is always ok; ready follows the database check', async (t) => {
  const { sql } = await testDatabase(t)
  let ready = false
  const app = await buildApp({
    config: loadConfig({ LOG_LEVEL: 'silent' }),
    sql,
    services: await createServices(sql, loadConfig({}), { info: () => {}, warn: () => {} }),
    openapi: await loadOpenapi(),
    isReady: async () => ready,
    logger: false,
  })
  t.teardown(() => app.close())
  t.same((await app.inject({ url: '/health/live' })).json(), { status: 'ok' })
  const down = await app.inject({ url: '/health/ready' })
  t.equal(down.statusCode, 503)
  ready = true
  const up = await app.inject({ url: '/health/ready' })
  t.equal(up.statusCode, 200)
  t.ok(up.headers['x-request-id'])
})
