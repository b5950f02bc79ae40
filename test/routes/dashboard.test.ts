import { readFile } from 'node:fs/promises'
import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'

const publicFile = (file: string): Promise<string> => readFile(new URL(`../../public/${file}`, import.meta.url), 'utf8')

t.test('GET / serves the dashboard page, which loads only its own script and style sheet', async (t) => {
  const { app } = await buildTestApp(t)
  const page = await app.inject({ url: '/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.body, await publicFile('index.html'))
  const sources = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1])
  t.same(sources.sort(), ['/dashboard.css', '/dashboard.js', '/docs', 'data:,'].sort(), 'no third-party or inline resources')
  t.match(page.headers['content-security-policy'], /default-src 'self'/)
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['cache-control'], 'no-cache')
})

t.test('the script and the style sheet are served with their content types', async (t) => {
  const { app } = await buildTestApp(t)
  const script = await app.inject({ url: '/dashboard.js' })
  t.equal(script.statusCode, 200)
  t.match(script.headers['content-type'], /^text\/javascript/)
  t.equal(script.body, await publicFile('dashboard.js'))
  const styles = await app.inject({ url: '/dashboard.css' })
  t.equal(styles.statusCode, 200)
  t.match(styles.headers['content-type'], /^text\/css/)
  t.equal(styles.body, await publicFile('dashboard.css'))
})

t.test('other methods on / and paths beside the assets stay 404 not-found problems', async (t) => {
  const { app } = await buildTestApp(t)
  for (const [method, url] of [['POST', '/'], ['DELETE', '/'], ['GET', '/index.html'], ['GET', '/dashboard.js/x'], ['GET', '/..%2Fpackage.json']] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
  }
})
