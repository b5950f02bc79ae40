import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { testDatabase } from '../helpers/test-database.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'

// Drives the dashboard at / in headless Chromium (Debian's package; .ci/run installs it) against the real server.
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const EVENTS = 20_000
const PER_APPEND = 1000
// small batches, so the rebuild of EVENTS events takes seconds and the bar has time to be seen moving
const BATCH_SIZE = 50
const SCREENSHOT = join(tmpdir(), 'annalist-dashboard.png')
const SCREENSHOT_RUNNING = join(tmpdir(), 'annalist-dashboard-running.png')
// generous: the machine is shared and small
const SLOW = { timeoutMs: 120_000, intervalMs: 20 }

// a browser, a server and a seconds-long rebuild on a shared 2-core machine: more than .taprc's 120 s per file
t.setTimeout(300_000)

const TICKS = { source: { categories: ['tick'] }, documentId: '$.streamId', handlers: { Tick: { inc: { count: 1 } } } }

const openBrowser = async (t: Test): Promise<BrowserContext | string> => {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is not installed (apt-get install -y chromium)`
  const profile = await mkdtemp(join(tmpdir(), 'annalist-chromium-'))
  t.teardown(() => rm(profile, { recursive: true, force: true }))
  try {
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 })
    t.teardown(() => context.close())
    return context
  } catch (error) {
    return `${CHROMIUM} did not launch: ${(error as Error).message.split('\n')[0]}`
  }
}

const appendTicks = async (server: ServerProcess): Promise<void> => {
  for (let at = 0; at < EVENTS; at += PER_APPEND) {
    const events = Array.from({ length: PER_APPEND }, () => ({ type: 'Tick', data: {} }))
    const response = await server.request('POST', `/streams/tick-${at / PER_APPEND}/events`, { body: { events } })
    if (response.status !== 201) throw new Error(`append answered ${response.status}: ${response.text}`)
  }
}

const progressOf = (page: Page, id: string): Promise<number | null> =>
  page.evaluate((selector) => document.querySelector<HTMLProgressElement>(selector)?.value ?? null, `[data-backfill-id="${id}"] progress`)

t.test('the dashboard shows a running backfill\'s bar moving to 100 % and a new event live', async (t) => {
  const context = await openBrowser(t)
  if (typeof context === 'string') {
    t.comment(`skipping the dashboard browser test: ${context}`)
    t.skip(context)
    return
  }
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url })
  await appendTicks(server)
  t.equal((await server.request('PUT', '/projections/ticks', { body: TICKS })).status, 201, 'the projection is defined')

  const page = context.pages()[0] ?? (await context.newPage())
  await page.setViewportSize({ width: 1280, height: 900 })
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text())
  })
  await page.goto(server.url + '/', { timeout: 60_000 })
  await page.locator('#projections tr[data-projection="ticks"]').waitFor({ timeout: 60_000 })
  await page.locator('#live[data-state="live"]').waitFor({ timeout: 60_000 })
  t.pass('the page lists the projection and its event feed is live')

  const started = await server.request('POST', '/projections/ticks/backfills', { body: { criteria: 'full-rebuild', batchSize: BATCH_SIZE } })
  t.equal(started.status, 202, 'a full rebuild is queued')
  const { id } = started.body as { id: string }

  const first = await waitFor('the bar part-way', async () => {
    const value = await progressOf(page, id)
    return value !== null && value > 0 && value < 100 ? value : undefined
  }, SLOW)
  const second = await waitFor('the bar to move on', async () => {
    const value = await progressOf(page, id)
    return value !== null && value > first ? value : undefined
  }, SLOW)
  t.ok(second > first, `the bar moved from ${first.toFixed(1)} % to ${second.toFixed(1)} %`)
  await page.screenshot({ path: SCREENSHOT_RUNNING })
  const item = page.locator(`[data-backfill-id="${id}"]`)
  t.match(await item.locator('.processed').textContent(), /^[\d,.\s ]+ \/ [\d,.\s ]+ events$/, 'processed / total is shown')
  t.match(await item.locator('.rate').textContent(), /events\/s$/, 'the rate is shown')

  await waitFor('the bar to reach 100 %', async () => (await progressOf(page, id)) === 100 && (await item.getAttribute('data-status')) === 'completed', SLOW)
  t.equal(await item.locator('.percent').textContent(), '100 %')
  const done = await server.request('GET', `/projections/ticks/backfills/${id}`)
  t.match(done.body, { status: 'completed', percent: 100 }, 'the API agrees the run completed')

  const marker = `marker-${randomUUID().slice(0, 8)}`
  t.equal((await server.request('POST', `/streams/${marker}/events`, { body: { events: [{ type: 'MarkerAppended', data: {} }] } })).status, 201)
  const shown = page.locator('#events li', { hasText: marker })
  await shown.waitFor({ timeout: 60_000 })
  t.match(await shown.textContent(), /MarkerAppended/, 'the new event appears in the recent events')
  await page.locator('#streams td', { hasText: marker }).waitFor({ timeout: 60_000 })
  t.pass('the new stream appears in the streams list')

  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  t.comment(`screenshots: ${SCREENSHOT_RUNNING} (during the rebuild), ${SCREENSHOT} (after it)`)
  t.same(errors, [], 'the page logged no errors')

  await checkKeyHandling(t, page)
})

const problem = (status: number, code: string, detail: string) => ({
  status,
  contentType: 'application/problem+json',
  body: JSON.stringify({ type: `https://annalist.dev/problems/${code}`, title: code, status, detail, code }),
})

// The server here has no keys, so the 401s and 403s are played by the browser's router; what is checked is the
// page: it sends the typed key on every call, streams included, and says what went wrong.
const checkKeyHandling = async (t: Test, page: Page): Promise<void> => {
  const authorization = new Map<string, string | undefined>()
  page.on('request', (request) => authorization.set(new URL(request.url()).pathname, request.headers().authorization))
  let refusing: 401 | 403 = 401
  const api = (url: URL): boolean => url.pathname !== '/' && !url.pathname.startsWith('/dashboard.')
  await page.route(api, (route) => {
    const { pathname } = new URL(route.request().url())
    if (refusing === 401) return route.fulfill(problem(401, 'unauthorized', 'a valid API key is required'))
    if (pathname.startsWith('/projections')) return route.fulfill(problem(403, 'forbidden', 'this key may not manage projections'))
    return route.continue()
  })

  await page.fill('#key', 'k-dashboard')
  await page.fill('#tenant', 'default')
  await page.click('#credentials button[type="submit"]')
  await page.locator('#banner', { hasText: 'needs an API key' }).waitFor({ timeout: 60_000 })
  t.pass('a 401 puts "needs an API key" in the banner')
  await waitFor('the projections, streams and log to be asked with the key', () =>
    ['/projections', '/streams', '/events'].every((path) => authorization.get(path) === 'Bearer k-dashboard'), SLOW)
  t.pass('GET /projections, /streams and /events carried Authorization: Bearer <key>')
  t.equal(await page.evaluate(() => sessionStorage.getItem('annalist.key')), 'k-dashboard', 'the key is kept for the tab only')

  refusing = 403
  await page.locator('#projections-section .message.auth', { hasText: 'may not manage projections' }).waitFor({ timeout: 60_000 })
  t.pass('a 403 says in the section that the key may not read it')
  await page.locator('#banner').waitFor({ state: 'hidden', timeout: 60_000 })
  await page.locator('#live[data-state="live"]').waitFor({ timeout: 60_000 })
  t.equal(authorization.get('/subscribe'), 'Bearer k-dashboard', 'the event stream (fetch, not EventSource) carried the key too')
  t.pass('the banner goes once the key is taken, and the event feed reconnects')

  await page.unroute(api)
  authorization.clear()
  await page.click('#forget')
  await page.locator('#projections-section .message').waitFor({ state: 'hidden', timeout: 60_000 })
  await waitFor('a call without the key', () => authorization.has('/projections'), SLOW)
  t.equal(authorization.get('/projections'), undefined, 'after Forget, calls go without a key')
  t.equal(await page.evaluate(() => sessionStorage.getItem('annalist.key')), null)
}
