import { existsSync, readFileSync } from 'node:fs'
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
const SCREENSHOT_PHONE = join(tmpdir(), 'annalist-dashboard-phone.png')
const PHONE = { width: 390, height: 844 }
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
  // one evaluate reads both panels at one moment: a projection shown rebuilding has its backfill shown beside it
  const together = await waitFor('the projection row to read rebuilding', () =>
    page.evaluate((id) => {
      const row = document.querySelector<HTMLElement>('#projections tr[data-projection="ticks"]')
      if (row?.dataset.status !== 'rebuilding') return undefined
      return { backfillShown: document.querySelector(`#backfills [data-backfill-id="${id}"]`) !== null, emptyShown: !document.querySelector<HTMLElement>('#backfills-section .empty')!.hidden }
    }, id), SLOW)
  t.same(together, { backfillShown: true, emptyShown: false }, 'while the row reads rebuilding, the backfills panel shows the run (never "No backfills yet")')

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

// Chromium and a server on a fresh database; undefined (the test skipped, saying why) without Chromium.
const browserAndServer = async (t: Test) => {
  const context = await openBrowser(t)
  if (typeof context === 'string') {
    t.skip(context)
    return undefined
  }
  const db = await testDatabase(t)
  return { context, server: await startServer(t, { DATABASE_URL: db.url }) }
}

const openPage = async (t: Test, context: BrowserContext, url: string): Promise<{ page: Page; errors: string[] }> => {
  const page = await context.newPage()
  t.teardown(() => page.close())
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text())
  })
  await page.goto(url, { timeout: 60_000 })
  return { page, errors }
}

const columnTexts = (page: Page, selector: string): Promise<string[]> =>
  page.evaluate((selector) => [...document.querySelectorAll(selector)].map((element) => element.textContent ?? ''), selector)

t.test('the stream browser: natural order, more than a page, a stream\'s events as JSON, an event opened from the feed', async (t) => {
  const started = await browserAndServer(t)
  if (!started) return
  const { context, server } = started
  const append = async (streamId: string, events: unknown[]) => {
    const response = await server.request('POST', `/streams/${streamId}/events`, { body: { events } })
    if (response.status !== 201) throw new Error(`append answered ${response.status}: ${response.text}`)
  }
  for (let n = 1; n <= 12; n++) await append(`c-${n}`, [{ type: 'Counted', data: { n } }])
  // 12 + 110 streams: more than the first page of 100
  for (let n = 1; n <= 110; n++) await append(`s-${n}`, [{ type: 'Seen', data: {} }])
  const data = { total: 189.48, lines: [{ sku: 'A-1', qty: 2 }], note: null }
  const metadata = { correlationId: 'corr-1', source: 'dashboard-test' }
  await append('c-2', [{ type: 'Noted', data, metadata }])

  const { page, errors } = await openPage(t, context, server.url + '/')
  await page.setViewportSize({ width: 1280, height: 900 })
  await page.locator('#streams tr[data-stream-id="s-1"]').waitFor({ timeout: 60_000 })
  const firstPage = await columnTexts(page, '#streams tbody td.name')
  t.equal(firstPage.length, 100, 'the first page holds 100 streams')
  t.same(firstPage.filter((id) => id.startsWith('c-')), Array.from({ length: 12 }, (_, i) => `c-${i + 1}`), 'c-2 comes before c-10')
  t.match(await page.locator('#stream-count').textContent(), /^100\+ streams$/)

  await page.click('#streams-more')
  await waitFor('every stream listed', async () => (await columnTexts(page, '#streams tbody td.name')).length === 122, SLOW)
  const all = await columnTexts(page, '#streams tbody td.name')
  t.same(all.filter((id) => id.startsWith('s-')), Array.from({ length: 110 }, (_, i) => `s-${i + 1}`), 'the next page is loaded, s-9 before s-10 before s-100')
  t.ok(await page.locator('#streams-more').isHidden(), 'no more to load')
  t.equal(await page.locator('#streams tr[data-stream-id="c-2"] td').nth(2).textContent(), '2', 'each stream with its count of events')
  await waitFor('the stream count', async () => (await page.locator('#stat-streams').textContent()) === '122', SLOW)

  await page.click('#streams tr[data-stream-id="c-2"]')
  const noted = page.locator('#stream-events .event[data-version="2"]')
  await noted.waitFor({ timeout: 60_000 })
  t.equal(await page.locator('#stream-view-title').textContent(), 'c-2')
  t.equal(await noted.locator('pre.data').textContent(), JSON.stringify(data, null, 2), "the event's data as formatted JSON")
  t.equal(await noted.locator('pre.metadata').textContent(), JSON.stringify(metadata, null, 2), 'and its metadata')
  t.equal(await page.locator('#stream-events .event').count(), 2, 'the stream has two events')

  const marker = `marker-${randomUUID().slice(0, 8)}`
  await append(marker, Array.from({ length: 60 }, (_, n) => ({ type: n === 24 ? 'Picked' : 'Filler', data: { n } })))
  await page.click(`#events li button:has-text("${marker} v25")`)
  const picked = page.locator('#stream-events .event.highlight')
  await picked.waitFor({ timeout: 60_000 })
  t.equal(await page.locator('#stream-view-title').textContent(), marker, 'an event of the recent-events list opens its stream')
  t.equal(await picked.getAttribute('data-version'), '25', 'at that event, marked')
  t.equal(await picked.locator('pre.data').textContent(), JSON.stringify({ n: 24 }, null, 2))
  t.ok(await page.locator('#stream-newer').isEnabled(), 'later events are a page away')
  t.same(await columnTexts(page, '#stream-events .event .version'), Array.from({ length: 20 }, (_, i) => `v${25 + i}`), 'a page of 20 from there')
  await page.click('#stream-newer')
  await page.locator('#stream-events .event[data-version="60"]').waitFor({ timeout: 60_000 })
  t.ok(await page.locator('#stream-newer').isDisabled(), 'the newest page is the last')
  await page.click('#stream-older')
  await page.locator('#stream-events .event[data-version="25"]').waitFor({ timeout: 60_000 })
  await page.click('#stream-older')
  await page.locator('#stream-events .event[data-version="5"]').waitFor({ timeout: 60_000 })
  t.pass('older and newer pages of the stream')
  t.same(errors, [], 'the page logged no errors')
})

// Every element inside the viewport's width, unless it sits in a container that scrolls or clips sideways.
// (A string, so the page runs it as written: the test loader would add helpers the page does not have.)
const OVERFLOWING = `(() => {
  const width = document.documentElement.clientWidth
  const clipped = (element) => {
    for (let parent = element.parentElement; parent; parent = parent.parentElement) {
      if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(parent).overflowX)) return true
    }
    return false
  }
  return [...document.body.querySelectorAll('*')]
    .filter((element) => {
      const rect = element.getBoundingClientRect()
      return rect.width > 0 && rect.right > width + 0.5 && !clipped(element)
    })
    .map((element) => element.tagName.toLowerCase() + (element.id ? '#' + element.id : '') + '.' + element.className + ' right=' + Math.round(element.getBoundingClientRect().right))
})()`

const overflowing = (page: Page): Promise<string[]> => page.evaluate(OVERFLOWING)

t.test('a projection action end to end, and the page at phone width', async (t) => {
  const started = await browserAndServer(t)
  if (!started) return
  const { context, server } = started
  await server.request('POST', '/streams/tick-1/events', { body: { events: [{ type: 'Tick', data: {} }] } })
  t.equal((await server.request('PUT', '/projections/a-projection-with-a-long-name', { body: TICKS })).status, 201)

  const { page, errors } = await openPage(t, context, server.url + '/')
  await page.setViewportSize(PHONE)
  const row = page.locator('#projections tr[data-projection="a-projection-with-a-long-name"]')
  await row.locator('.badge.status-running').waitFor({ timeout: 60_000 })

  await row.locator('button[data-action="stop"]').click()
  await page.locator('#confirm[open]').waitFor({ timeout: 10_000 })
  t.match(await page.locator('#confirm-title').textContent(), /Stop projection a-projection-with-a-long-name\?/, 'the action asks first')
  await page.click('#confirm-cancel')
  t.ok(await page.locator('#confirm').evaluate((dialog: HTMLDialogElement) => !dialog.open), 'cancel closes the dialog')
  t.match((await server.request('GET', '/projections/a-projection-with-a-long-name')).body, { status: 'running' }, 'and sends nothing')

  await row.locator('button[data-action="stop"]').click()
  await page.click('#confirm-ok')
  await page.locator('#action-result[data-state="done"]', { hasText: 'now stopped' }).waitFor({ timeout: 60_000 })
  t.match((await server.request('GET', '/projections/a-projection-with-a-long-name')).body, { status: 'stopped' }, 'the server stopped it')
  await row.locator('.badge.status-stopped').waitFor({ timeout: 60_000 })
  t.pass('the table shows it stopped')

  t.equal(await row.locator('button[data-action="skip"]').count(), 0, 'skip is offered only for a failed projection')
  await row.locator('button[data-action="start"]').click()
  await page.click('#confirm-ok')
  await page.locator('#action-result[data-state="done"]', { hasText: 'now running' }).waitFor({ timeout: 60_000 })
  await row.locator('.badge.status-running').waitFor({ timeout: 60_000 })
  t.pass('started again')

  await row.locator('button[data-action="rebuild"]').click()
  await page.click('#confirm-ok')
  await page.locator('#action-result[data-state="done"]', { hasText: 'backfill' }).waitFor({ timeout: 60_000 })
  await page.locator('#backfills li[data-status="completed"] .projection', { hasText: 'a-projection-with-a-long-name' }).waitFor({ timeout: 60_000 })
  t.pass('a rebuild is started and its backfill shows in the panel')

  await page.evaluate(() => window.scrollTo(0, 0))
  t.same(await overflowing(page), [], `nothing reaches past ${PHONE.width} px`)
  t.equal(await page.evaluate(() => document.documentElement.scrollWidth), PHONE.width, 'no sideways scrolling')
  await page.screenshot({ path: SCREENSHOT_PHONE, fullPage: true })
  // a PNG's width is the big-endian integer at byte 16 of its IHDR chunk
  const width = readFileSync(SCREENSHOT_PHONE).readUInt32BE(16)
  t.equal(width, PHONE.width, `the full-page screenshot (${SCREENSHOT_PHONE}) is as wide as the phone`)
  // measured in the page in one go: the table is redrawn every 2 s, so a handle could outlive its row
  const box = (await page.evaluate(`(() => {
    const rect = document.querySelector('#projections tr[data-projection="a-projection-with-a-long-name"] button[data-action="rollback"]')?.getBoundingClientRect()
    return rect ? { left: rect.left, right: rect.right } : null
  })()`)) as { left: number; right: number } | null
  t.ok(box && box.left >= 0 && box.right <= PHONE.width, `the last action of the row is on screen (${JSON.stringify(box)})`)
  t.same(errors, [], 'the page logged no errors')
})

const problem = (status: number, code: string, detail: string) => ({
  status,
  contentType: 'application/problem+json',
  body: JSON.stringify({ type: `https://annalist.dev/problems/${code}`, title: code, status, detail, code }),
})

const visibleMessages = (page: Page): Promise<string[]> =>
  page.evaluate(() => [...document.querySelectorAll<HTMLElement>('.message')].filter((element) => !element.hidden).map((element) => element.textContent ?? ''))

// The server here has no keys, so the 401s and 403s are played by the browser's router; what is checked is the
// page: it sends the typed key on every call, streams included, and says what went wrong.
const checkKeyHandling = async (t: Test, page: Page): Promise<void> => {
  const authorization = new Map<string, string | undefined>()
  page.on('request', (request) => authorization.set(new URL(request.url()).pathname, request.headers().authorization))
  let refusing: 401 | 403 = 401
  const api = (url: URL): boolean => url.pathname !== '/' && !url.pathname.startsWith('/dashboard')
  await page.route(api, (route) => {
    const { pathname } = new URL(route.request().url())
    if (refusing === 401) return route.fulfill(problem(401, 'unauthorized', 'a valid API key is required'))
    if (pathname.startsWith('/projections')) return route.fulfill(problem(403, 'forbidden', 'this key may not manage projections'))
    return route.continue()
  })

  await page.click('#forget')
  await page.locator('#banner', { hasText: 'This server needs an API key' }).waitFor({ timeout: 60_000 })
  await page.locator('#live[data-state="locked"]', { hasText: 'key needed' }).waitFor({ timeout: 60_000 })
  t.same(await visibleMessages(page), [], 'the panels do not repeat it: the banner says it once')
  t.pass('a 401 without a key: one banner asking for a key, and the feed says "key needed", not "reconnecting"')

  await page.fill('#key', 'k-dashboard')
  await page.fill('#tenant', 'default')
  await page.click('#credentials button[type="submit"]')
  await page.locator('#banner', { hasText: 'This key was not accepted' }).waitFor({ timeout: 60_000 })
  t.pass('a 401 with a key says the key was not accepted')
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
