import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import type { Sql } from '../../src/db/connect.js'
import { stringifyExact } from '../../src/events/exact-json.js'
import { matchesIfNoneMatch } from '../../src/http/etag.js'
import { ProblemRef } from '../../src/http/schemas.js'
import { Limit } from '../../src/events/schemas.js'
import { parseFilter, parseOrderBy } from '../../src/projections/documents/document-query.js'
import { awaitPosition, exactDocument, getDocument, nextCursor } from '../../src/projections/documents/documents.js'
import { readDocumentPage, type DocumentChunks } from '../../src/projections/documents/document-page.js'
import { readChunkBytes } from '../../src/events/event-page.js'
import { sendPage } from '../../src/http/page-body.js'
import { DocumentCursor, DocumentPage, DocumentQuery, ProjectionName, ProjectionParams, ReadYourWrites, StoredDocument } from '../../src/projections/schemas.js'
import type { ProjectionProgress } from '../../src/projections/progress.js'

export interface DocumentRoutesOptions {
  sql: Sql
  progress: ProjectionProgress
  // MAX_PAGE_BYTES: a page of documents also stops once it holds this many bytes of them (always one)
  maxPageBytes: number
}

const DocumentId = Type.String({ minLength: 1, maxLength: 1024, pattern: '^[^\\u0000]+$' })

// a 304 has no body, so neither a content type nor a length (RFC 9110 §15.4.5)
const withoutBody = (reply: FastifyReply): null => {
  reply.removeHeader('content-type')
  reply.removeHeader('content-length')
  return null
}

// documents keep every number's digits (SPEC "Details"): written as text, past the response serializer
const sendExact = (reply: FastifyReply, body: unknown): FastifyReply =>
  reply.type('application/json; charset=utf-8').send(stringifyExact(body))

// `{documents, next, count?}`, written a chunk of documents at a time (page-body.ts), each document exact
const sendDocuments = (reply: FastifyReply, chunks: DocumentChunks): Promise<FastifyReply> =>
  sendPage(reply, chunks.page, {
    open: '{"documents":[',
    event: ({ sortKeys: _, ...row }) => stringifyExact(exactDocument(row)),
    close: () => `],"next":${JSON.stringify(nextCursor(chunks))}${chunks.count === undefined ? '' : `,"count":${chunks.count}`}}`,
  })

const problems = { 400: ProblemRef, 404: ProblemRef, 500: ProblemRef, 504: ProblemRef }

// GET …/documents: the query of POST …/query as query parameters (filter and orderBy as JSON text)
const DocumentListQuery = Type.Object({
  filter: Type.Optional(Type.String({ maxLength: 65536 })),
  orderBy: Type.Optional(Type.String({ maxLength: 8192 })),
  limit: Type.Optional(Limit),
  cursor: Type.Optional(DocumentCursor),
  count: Type.Optional(Type.Boolean()),
  ...ReadYourWrites.properties,
})

export const documentRoutes: FastifyPluginAsyncTypebox<DocumentRoutesOptions> = async (app, { sql, progress, maxPageBytes }) => {
  app.get('/:name/documents/:id', {
    schema: {
      params: Type.Object({ name: ProjectionName, id: DocumentId }),
      querystring: ReadYourWrites,
      headers: Type.Object({ 'if-none-match': Type.Optional(Type.String()) }),
      response: { 200: StoredDocument, 304: Type.Null(), ...problems },
    },
    onSend: async (_request, reply, payload) => (reply.statusCode === 304 ? withoutBody(reply) : payload),
  }, async (request, reply) => {
    const { name, id } = request.params
    await awaitPosition(sql, progress, request.tenant, name, request.query)
    const { generation, document } = await getDocument(sql, request.tenant, name, id)
    // strong: a generation's document at one version is one exact JSON value
    const etag = `"${generation}.${document.version}"`
    reply.header('etag', etag)
    if (matchesIfNoneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send(null)
    return sendExact(reply, document)
  })

  app.get('/:name/documents', {
    schema: {
      params: ProjectionParams,
      querystring: DocumentListQuery,
      response: { 200: DocumentPage, ...problems },
    },
  }, async (request, reply) => {
    const { name } = request.params
    const { filter, orderBy, limit, cursor, count } = request.query
    const query = { filter: parseFilter(filter), orderBy: parseOrderBy(orderBy), limit, cursor, count }
    await awaitPosition(sql, progress, request.tenant, name, request.query)
    return sendDocuments(reply, await readDocumentPage(sql, request.tenant, name, query, maxPageBytes, readChunkBytes(maxPageBytes)))
  })

  app.post('/:name/query', {
    schema: {
      params: ProjectionParams,
      querystring: ReadYourWrites,
      body: DocumentQuery,
      response: { 200: DocumentPage, 413: ProblemRef, 415: ProblemRef, ...problems },
    },
  }, async (request, reply) => {
    await awaitPosition(sql, progress, request.tenant, request.params.name, request.query)
    return sendDocuments(reply, await readDocumentPage(sql, request.tenant, request.params.name, request.body, maxPageBytes, readChunkBytes(maxPageBytes)))
  })
}
