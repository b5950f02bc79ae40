import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { FastifyPluginAsync } from 'fastify'
import { Type } from 'typebox'
import { ProblemRef } from '../src/http/schemas.js'

// public/ sits beside routes/ in the source tree, and two levels up from dist/routes/ once compiled.
const candidates = [new URL('../public/', import.meta.url), new URL('../../public/', import.meta.url)]

const readAsset = async (file: string): Promise<string> => {
  for (const dir of candidates) {
    try {
      return await readFile(fileURLToPath(new URL(file, dir)), 'utf8')
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') throw error
    }
  }
  throw new Error(`public/${file} not found beside the project`)
}

// The page only ever talks to this server's own API; nothing inline, nothing from elsewhere.
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
}

const ASSETS = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/dashboard.js', file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  { url: '/dashboard.css', file: 'dashboard.css', type: 'text/css; charset=utf-8' },
]

// SPEC "Operations": the dashboard at `/`, a static page whose script calls the API itself (with the key the
// user types, SPEC "Details"), so serving it needs no key and reads nothing from the database.
export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  for (const { url, file, type } of ASSETS) {
    const body = await readAsset(file)
    app.get(url, { schema: { response: { 200: Type.String(), 400: ProblemRef } } }, async (_request, reply) =>
      reply.headers(PAGE_HEADERS).type(type).send(body),
    )
  }
}
