import { existsSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { chromium } from 'playwright-core'
import { testDatabase } from '../helpers/test-database.js'
import { startServer } from '../helpers/server-process.js'

// /docs in headless Chromium (Debian's package; .ci/run installs it) against a fresh server: Annalist's name,
// no Content-Security-Policy error, problem schemas by name, and "Try it out" appending twice to the default
// tenant with the document's own example.
const CHROMIUM = '/usr/bin/chromium'
t.setTimeout(180_000)

t.test('the reference page is Annalist\'s, renders cleanly, and its first example can be tried twice', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is not installed (apt-get install -y chromium)`)
    return
  }
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url! })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'], timeout: 60_000 })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const problems: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text())
  })
  page.on('pageerror', (error) => problems.push(error.message))

  await page.goto(`${server.url}/docs#/streams/appendEvents`)
  const operation = page.locator('#operations-streams-appendEvents')
  await operation.locator('.opblock-body').waitFor({ timeout: 30_000 })
  t.equal(await page.title(), 'Annalist API')
  t.match(await page.locator('.topbar-wrapper img').getAttribute('src'), /^data:image\/svg\+xml;base64,/, 'Annalist\'s logo in the top bar')
  t.match(await page.locator('.info .title').innerText(), /Annalist API/)

  const streamId = `order-${randomUUID().slice(0, 8)}`
  await operation.getByRole('button', { name: 'Try it out' }).click()
  await operation.locator('input[placeholder="streamId"]').fill(streamId)
  for (const version of [2, 4]) {
    await operation.getByRole('button', { name: 'Execute' }).click()
    await operation.locator('.live-responses-table .response .response-col_status').first().waitFor({ timeout: 30_000 })
    t.match(await operation.locator('.live-responses-table .response .response-col_status').first().innerText(), /201/, 'the example appends')
    const stream = await server.request('GET', `/streams/${streamId}`)
    t.equal(stream.body?.version, version, 'in the default tenant, every try')
    await operation.getByRole('button', { name: 'Clear' }).click()
  }

  // problem schemas are listed by name, and none renders as an anonymous intersection
  // the Schemas section lists every schema by name (open by default)
  await page.locator('section.models').getByText('WrongExpectedVersionProblem', { exact: true }).first().waitFor({ timeout: 10_000 })
  const models = await page.locator('section.models').innerText()
  for (const name of ['WrongExpectedVersionProblem', 'ProjectionNotFoundProblem', 'ValidationFailedProblem']) t.match(models, name)
  const problemRows = models.split('\n').filter((line) => /Problem/.test(line))
  t.ok(problemRows.length >= 20, `${problemRows.length} problem schemas listed`)
  t.same(problemRows.filter((line) => /&/.test(line)), [], 'no problem schema renders as "(any & object)"')
  t.same(problems, [], 'no console error (Content-Security-Policy included)')
})
