import { readFile } from 'node:fs/promises'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { Test } from 'tap'
import { parse } from 'yaml'

type Json = Record<string, any>

export interface InjectedResponse {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
}

export const OPENAPI_URL = new URL('../../openapi.yaml', import.meta.url)
export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const
const DOC_KEY = 'openapi.yaml'
// Readiness answers a plain Health body, so load balancers need not parse problems; every other error is one.
const NOT_PROBLEMS = new Set(['GET /health/ready 503'])
// Statuses every operation shares, which test/contract/auth.test.ts produces on each operation, so the per-area
// contract tests (on an open server) need not: 401, 403 and 429 on every keyed operation.
const ACCESS_STATUSES = new Set(['401', '403', '429'])
export const isCrossCutting = (_operation: Json, status: string): boolean => ACCESS_STATUSES.has(status)

export const readOpenapi = async (): Promise<Json> => parse(await readFile(OPENAPI_URL, 'utf8')) as Json

// A JSON pointer into the document, as a URI fragment Ajv resolves against the whole document.
export const pointer = (...tokens: string[]): string =>
  '#' + tokens.map((token) => '/' + encodeURIComponent(token.replace(/~/g, '~0').replace(/\//g, '~1'))).join('')

export const operations = (doc: Json): { path: string; method: string; operation: Json }[] =>
  Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    HTTP_METHODS.filter((method) => item[method]).map((method) => ({ path, method, operation: item[method] as Json })),
  )

const isObjectSchema = (node: Json): boolean =>
  (node.type === 'object' || (Array.isArray(node.type) && node.type.includes('object'))) && typeof node.properties === 'object'

// SPEC "Details": every field a response can carry is named in its schema. The document leaves object schemas
// open (a client must tolerate fields added later), so the tests validate against a copy in which an object
// schema that says nothing about other properties allows none: an unnamed field fails the check.
// `unevaluatedProperties` rather than `additionalProperties`, so properties named through allOf/oneOf count.
export const closedCopy = (doc: Json): Json => {
  const close = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(close)
    if (node === null || typeof node !== 'object') return node
    const copy: Json = {}
    for (const [key, value] of Object.entries(node as Json)) copy[key] = key === 'example' || key === 'examples' ? value : close(value)
    if (isObjectSchema(copy) && copy.additionalProperties === undefined && copy.unevaluatedProperties === undefined) copy.unevaluatedProperties = false
    return copy
  }
  return close(doc) as Json
}

export class OpenapiContract {
  readonly ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true, validateFormats: true })
  // every (METHOD path status) a request produced, so a test can ask which documented ones none did
  readonly seen = new Set<string>()

  constructor(readonly doc: Json) {
    addFormats.default(this.ajv)
    // the document is not a JSON Schema, but Ajv resolves pointers into it; OpenAPI's own keys are known words
    this.ajv.addVocabulary(['openapi', 'info', 'servers', 'tags', 'paths', 'components', 'security'])
    this.ajv.addSchema(closedCopy(doc), DOC_KEY)
  }

  static async load(): Promise<OpenapiContract> {
    return new OpenapiContract(await readOpenapi())
  }

  validate(ref: string, value: unknown): string | undefined {
    const validate = this.ajv.getSchema(DOC_KEY + ref)
    if (!validate) return `no schema at ${ref}`
    return validate(value) ? undefined : this.ajv.errorsText(validate.errors, { dataVar: 'body' })
  }

  // The response object for a status, and the pointer to it, following one components/responses $ref.
  response(path: string, method: string, status: number): { at: string[]; response: Json } | undefined {
    const response = this.doc.paths[path]?.[method]?.responses?.[String(status)] as Json | undefined
    if (!response) return undefined
    if (typeof response.$ref !== 'string') return { at: ['paths', path, method, 'responses', String(status)], response }
    const name = response.$ref.replace('#/components/responses/', '')
    return { at: ['components', 'responses', name], response: this.doc.components.responses[name] as Json }
  }

  // Asserts the response is one openapi.yaml documents for this operation: status, headers, content type and body.
  check(t: Test, method: string, path: string, res: InjectedResponse): void {
    const verb = method.toLowerCase()
    const label = `${method.toUpperCase()} ${path} ${res.statusCode}`
    this.seen.add(label)
    t.ok(this.doc.paths[path]?.[verb], `${method.toUpperCase()} ${path} is in openapi.yaml`)
    const found = this.response(path, verb, res.statusCode)
    if (!found) {
      t.fail(`${label} is not documented (body ${res.body.slice(0, 200)})`)
      return
    }
    const { at, response } = found
    t.type(res.headers['x-request-id'], 'string', `${label} has x-request-id`)
    for (const [name, header] of Object.entries((response.headers ?? {}) as Json)) {
      if (name !== 'x-request-id' && (header.$ref || header.required)) t.ok(res.headers[name.toLowerCase()], `${label} has the ${name} header`)
    }
    const contentType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim()
    if (res.statusCode >= 400 && !NOT_PROBLEMS.has(label)) t.equal(contentType, 'application/problem+json', `${label} is a problem`)
    if (!response.content) {
      t.equal(res.body, '', `${label} has no body, as documented`)
      return
    }
    const mediaType = contentType in response.content ? contentType : '*/*'
    const media = response.content[mediaType] as Json | undefined
    if (!media) {
      t.fail(`${label} content type ${contentType} is not documented (${Object.keys(response.content).join(', ')})`)
      return
    }
    if (!/^application\/(.+\+)?json$/.test(mediaType)) return
    const error = this.validate(pointer(...at, 'content', mediaType, 'schema'), JSON.parse(res.body))
    t.notOk(error, `${label} body matches openapi.yaml`, { error, body: res.body.slice(0, 500) })
  }

  // Every documented status no checked response had, as "METHOD path status", for the paths `covers` takes.
  // `crossCutting` true: only the statuses isCrossCutting names; false: all the others.
  unexercised(covers: (path: string) => boolean = () => true, crossCutting = false): string[] {
    return operations(this.doc).filter(({ path }) => covers(path)).flatMap(({ path, method, operation }) =>
      Object.keys(operation.responses as Json)
        .filter((status) => crossCutting === isCrossCutting(operation, status))
        .map((status) => `${method.toUpperCase()} ${path} ${status}`)
        .filter((label) => !this.seen.has(label)),
    )
  }
}
