import type { FastifyPluginAsync } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

export interface DocsRoutesOptions {
  openapi: Record<string, unknown>
}

export const DOCS_TITLE = 'Annalist API'

// Annalist's mark: a ledger of entries, the newest one highlighted, beside the name. Light on the dark top bar.
export const ANNALIST_LOGO = `<svg xmlns="http://www.w3.org/2000/svg" width="184" height="40" viewBox="0 0 184 40" role="img" aria-label="Annalist">
<rect x="2" y="2" width="36" height="36" rx="7" fill="#2f6f4f"/>
<rect x="9" y="10" width="22" height="3" rx="1.5" fill="#d9efe2"/>
<rect x="9" y="16" width="22" height="3" rx="1.5" fill="#d9efe2"/>
<rect x="9" y="22" width="22" height="3" rx="1.5" fill="#d9efe2"/>
<rect x="9" y="28" width="14" height="3" rx="1.5" fill="#ffd166"/>
<text x="48" y="28" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="22" font-weight="600" fill="#ffffff">Annalist</text>
</svg>`

const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40"><rect x="2" y="2" width="36" height="36" rx="7" fill="#2f6f4f"/>
<rect x="9" y="10" width="22" height="3" rx="1.5" fill="#d9efe2"/><rect x="9" y="16" width="22" height="3" rx="1.5" fill="#d9efe2"/>
<rect x="9" y="22" width="22" height="3" rx="1.5" fill="#d9efe2"/><rect x="9" y="28" width="14" height="3" rx="1.5" fill="#ffd166"/></svg>`

// The top bar's "Explore" box would load another document into the page; this page shows Annalist's own.
const THEME_CSS = '.swagger-ui .topbar .download-url-wrapper { display: none }\n'

// Everything from this origin; the logo is a data: URL. Swagger UI sets inline styles while it renders (never
// inline scripts), so styles alone may be inline. No upgrade-insecure-requests: a server reached over plain
// HTTP by name would have its own assets upgraded to HTTPS it does not serve.
const CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "connect-src 'self'",
  "font-src 'self' data:",
  "frame-ancestors 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self' 'unsafe-inline'",
].join('; ')

type Json = Record<string, any>
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']

// Swagger UI leaves a `$ref` parameter of a path item (rather than of an operation) unresolved in an OpenAPI 3.1
// document: the form shows nameless "any" fields and "Try it out" cannot fill the path. The page gets the same
// document with each path item's parameters listed on its operations instead, which OpenAPI defines as the same
// thing (an operation's own parameter of the same name and location wins).
export const withOperationParameters = (document: Json): Json => {
  const copy = structuredClone(document)
  for (const item of Object.values<Json>(copy.paths ?? {})) {
    const shared: Json[] = item.parameters ?? []
    delete item.parameters
    for (const method of METHODS.filter((name) => item[name])) {
      const own: Json[] = item[method].parameters ?? []
      const key = (parameter: Json): string => {
        const resolved = parameter.$ref ? copy.components.parameters[String(parameter.$ref).split('/').pop()!] : parameter
        return `${resolved.in} ${resolved.name}`
      }
      const taken = new Set(own.map(key))
      if (shared.length) item[method].parameters = [...shared.filter((parameter) => !taken.has(key(parameter))), ...own]
    }
  }
  return copy
}

// The committed openapi.yaml is the contract; /openapi.json serves it as written, and /docs renders it.
export const docsRoutes: FastifyPluginAsync<DocsRoutesOptions> = async (app, { openapi }) => {
  await app.register(swagger, { mode: 'static', specification: { document: openapi as never } })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: CSP,
    theme: {
      title: DOCS_TITLE,
      favicon: [{ filename: 'annalist.svg', rel: 'icon', sizes: 'any', type: 'image/svg+xml', content: FAVICON }],
      css: [{ filename: 'annalist.css', content: THEME_CSS }],
    },
    logo: { type: 'image/svg+xml', content: ANNALIST_LOGO, href: '/docs' },
    uiConfig: { deepLinking: true, displayRequestDuration: true, tryItOutEnabled: false },
    transformSpecification: (document: Json) => withOperationParameters(document),
  })
  // the reference page is /docs; a trailing slash is another path (SPEC "Details"), so the plugin's redirect
  // from its static index.html goes there and not to /docs/
  app.addHook('onSend', async (request, reply) => {
    if (request.routeOptions.url === '/docs/static/index.html' && reply.getHeader('location') === '/docs/') reply.header('location', '/docs')
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => openapi)
}
