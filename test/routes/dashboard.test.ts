import { readdir, readFile } from 'node:fs/promises'
import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'

const publicFile = (file: string): Promise<string> => readFile(new URL(`../../public/${file}`, import.meta.url), 'utf8')
const moduleFiles = async (): Promise<string[]> => (await readdir(new URL('../../public/dashboard/', import.meta.url))).sort()

const PAGE_HEADERS = ['content-security-policy', 'x-content-type-options', 'cache-control'] as const

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

t.test('each module in public/dashboard/ is served as it is, with the page\'s headers', async (t) => {
  const { app } = await buildTestApp(t)
  const page = await app.inject({ url: '/' })
  const files = await moduleFiles()
  t.ok(files.length >= 8, `${files.length} modules`)
  for (const file of files) {
    const res = await app.inject({ url: `/dashboard/${file}` })
    t.equal(res.statusCode, 200, file)
    t.equal(res.headers['content-type'], 'text/javascript; charset=utf-8', file)
    t.equal(res.body, await publicFile(`dashboard/${file}`), file)
    for (const header of PAGE_HEADERS) t.equal(res.headers[header], page.headers[header], `${file}: ${header}`)
  }
})

t.test('other methods on / and paths beside the assets stay 404 not-found problems', async (t) => {
  const { app } = await buildTestApp(t)
  const beside = [
    '/index.html', '/dashboard.js/x', '/..%2Fpackage.json', '/dashboard', '/dashboard/', '/dashboard/nope.js', '/dashboard/Format.js',
    '/dashboard/format.js/x', '/dashboard//format.js', '/dashboard/format.js%00', '/dashboard/__proto__', '/dashboard/dashboard.css',
    '/dashboard/../package.json', '/dashboard/..%2Fpackage.json', '/dashboard/%2E%2E%2Fpackage.json', '/dashboard/..%2F..%2Fpackage.json',
    '/dashboard/..%2Fdashboard.js', '/dashboard/..%2F..%2Froutes%2Fdashboard.ts', '/dashboard/%2Fetc%2Fpasswd',
  ]
  for (const [method, url] of [['POST', '/'], ['DELETE', '/'], ['POST', '/dashboard/format.js'], ...beside.map((url) => ['GET', url] as const)] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
  }
})

// The page's import graph, read from the files: `import { a, b } from './x.js'` is the only form they use.
const IMPORT = /^import \{([^}]+)\} from '([^']+)'$/
const EXPORT = /^export (?:const|let|class) ([\w$]+)/

interface Module {
  url: string
  imports: { url: string; names: string[] }[]
  exports: Set<string>
}

const readModule = (url: string, source: string): Module => {
  const lines = source.split('\n')
  const imports = lines.filter((line) => /^\s*import\b|\bimport\(/.test(line)).map((line) => {
    const match = IMPORT.exec(line)
    if (!match) throw new Error(`${url}: an import of another form: ${line}`)
    return { url: new URL(match[2]!, `http://page${url}`).pathname, names: match[1]!.split(',').map((name) => name.trim()) }
  })
  return { url, imports, exports: new Set(lines.flatMap((line) => EXPORT.exec(line)?.[1] ?? [])) }
}

t.test('the script\'s imports are served, name exports that exist, reach every module and never go round', async (t) => {
  const { app } = await buildTestApp(t)
  const graph = new Map<string, Module>()
  const load = async (url: string): Promise<void> => {
    if (graph.has(url)) return
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, `${url} is served`)
    const module = readModule(url, res.body)
    graph.set(url, module)
    for (const { url: imported } of module.imports) await load(imported)
  }
  await load('/dashboard.js')
  t.same([...graph.keys()].filter((url) => url !== '/dashboard.js').sort(), (await moduleFiles()).map((file) => `/dashboard/${file}`), 'every module is used')
  for (const module of graph.values()) {
    for (const { url, names } of module.imports) {
      t.same(names.filter((name) => !graph.get(url)!.exports.has(name)), [], `${module.url} imports from ${url} only what it exports`)
    }
    const used = new Set([...graph.values()].flatMap(({ imports }) => imports.filter(({ url }) => url === module.url).flatMap(({ names }) => names)))
    t.same([...module.exports].filter((name) => !used.has(name)), [], `${module.url} exports only what is imported`)
  }
  // one-way imports: a depth-first walk never meets a module still on its own path
  const path: string[] = []
  const done = new Set<string>()
  const walk = (url: string): void => {
    t.notOk(path.includes(url), `no import cycle through ${url}`, { path })
    if (path.includes(url) || done.has(url)) return
    path.push(url)
    for (const { url: imported } of graph.get(url)!.imports) walk(imported)
    path.pop()
    done.add(url)
  }
  walk('/dashboard.js')
})

t.test('each module is small, and links in Node: every name it imports is one the other module exports', async (t) => {
  // api.js reads the saved key as it loads; nothing else in the modules touches the page until called
  Object.assign(globalThis, { sessionStorage: { getItem: () => null } })
  for (const file of await moduleFiles()) {
    const source = await publicFile(`dashboard/${file}`)
    t.ok(source.split('\n').length <= 200, `${file} is under 200 lines`)
    await t.resolves(import(`../../public/dashboard/${file}`), `${file} links and loads`)
  }
  t.ok((await publicFile('dashboard.js')).split('\n').length <= 150, 'dashboard.js only wires the modules')
})
