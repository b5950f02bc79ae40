import { access, readdir, readFile } from 'node:fs/promises'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { notFound } from '../src/http/request-shape.js'
import { ProblemRef } from '../src/http/schemas.js'

// public/ sits beside routes/ in the source tree, and two levels up from dist/routes/ once compiled.
const candidates = [new URL('../public/', import.meta.url), new URL('../../public/', import.meta.url)]

const locate = async (path: string): Promise<URL> => {
  for (const dir of candidates) {
    const url = new URL(path, dir)
    try {
      await access(url)
      return url
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') throw error
    }
  }
  throw new Error(`public/${path} not found beside the project`)
}

const readAsset = async (file: string): Promise<string> => readFile(await locate(file), 'utf8')

const MODULE_FILE = /^[a-z][a-z0-9-]*\.js$/

// The modules /dashboard.js imports: the scripts in public/dashboard/, listed and read once at start-up, so a
// request only picks one of these bodies by name and nothing it sends reaches the file system.
const readModules = async (): Promise<Map<string, string>> => {
  const dir = await locate('dashboard/')
  const files = (await readdir(dir)).filter((file) => MODULE_FILE.test(file))
  return new Map(await Promise.all(files.map(async (file) => [file, await readFile(new URL(file, dir), 'utf8')] as const)))
}

// The page only ever talks to this server's own API; nothing inline, nothing from elsewhere.
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
}

const SCRIPT = 'text/javascript; charset=utf-8'

const ASSETS = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/dashboard.js', file: 'dashboard.js', type: SCRIPT },
  { url: '/dashboard.css', file: 'dashboard.css', type: 'text/css; charset=utf-8' },
]

// SPEC "Operations": the dashboard at `/`, a static page whose script calls the API itself (with the key the
// user types, SPEC "Details"), so serving it needs no key and reads nothing from the database.
export const dashboardRoutes: FastifyPluginAsyncTypebox = async (app) => {
  for (const { url, file, type } of ASSETS) {
    const body = await readAsset(file)
    app.get(url, { schema: { response: { 200: Type.String(), 400: ProblemRef } } }, async (_request, reply) =>
      reply.headers(PAGE_HEADERS).type(type).send(body),
    )
  }
  const modules = await readModules()
  app.get('/dashboard/:module', {
    schema: { params: Type.Object({ module: Type.String() }), response: { 200: Type.String(), 400: ProblemRef, 404: ProblemRef } },
  }, async (request, reply) => {
    const body = modules.get(request.params.module)
    if (body === undefined) throw notFound(request)
    return reply.headers(PAGE_HEADERS).type(SCRIPT).send(body)
  })
}
