import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { chromium } from 'playwright-core'
import { testDatabase } from '../helpers/test-database.js'
import { startServer } from '../helpers/server-process.js'

// The dashboard shows a subject's status when asked (issue 14), in headless Chromium against the real server.
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const ADMIN = 'e2e-admin-key-5d0e8b31'

t.setTimeout(240_000)

t.test('asked for a subject, the dashboard shows its events, whether it is forgotten, and pending rebuilds', async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip(`${CHROMIUM} is not installed`)
  const profile = await mkdtemp(join(tmpdir(), 'annalist-chromium-'))
  t.teardown(() => rm(profile, { recursive: true, force: true }))
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 })
  t.teardown(() => context.close())
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url!, API_KEYS: `${ADMIN}:*:admin` })
  const headers = { authorization: `Bearer ${ADMIN}` }
  const body = { events: [{ type: 'CustomerRegistered', data: {}, subject: 'customer-7', personalData: { name: 'Ada' } }] }
  t.equal((await server.request('POST', '/streams/customer-7/events', { headers, body })).status, 201)

  const page = context.pages()[0] ?? (await context.newPage())
  await page.goto(server.url + '/', { timeout: 60_000 })
  await page.fill('#key', ADMIN)
  await page.press('#key', 'Enter')
  const values = async () => page.locator('#subject-status dd').allTextContents()
  await page.fill('#subject-id', 'customer-7')
  await page.press('#subject-id', 'Enter')
  await page.locator('#subject-status:not([hidden])').waitFor({ timeout: 60_000 })
  t.same(await values(), ['customer-7', '1', 'no', 'none'])

  t.equal((await server.request('DELETE', '/subjects/customer-7', { headers })).status, 202)
  await page.press('#subject-id', 'Enter')
  await page.waitForFunction(() => document.querySelectorAll('#subject-status dd')[2]?.textContent?.startsWith('yes'), undefined, { timeout: 60_000 })
  t.match((await values())[2], /^yes, /)

  await page.fill('#subject-id', 'customer-unknown')
  await page.press('#subject-id', 'Enter')
  await page.locator('#subject-section .message:not([hidden])').waitFor({ timeout: 60_000 })
  t.match(await page.locator('#subject-section .message').textContent(), /customer-unknown/)
  t.ok(await page.locator('#subject-status').isHidden())
})
