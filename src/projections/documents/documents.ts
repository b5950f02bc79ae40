import type { Sql } from '../../db/connect.js'
import { parseExact } from '../../events/exact-json.js'
import { Problem } from '../../problems.js'
import {
  afterCursor,
  conditions,
  decodeCursor,
  encodeCursor,
  orderClause,
  sortKeys,
  sortKeysText,
  type Fragment,
} from './document-query.js'
import { positionFor, type ProjectionProgress } from '../progress.js'
import { getProjection, notFound } from '../definitions.js'
import { DEFAULT_TIMEOUT_MS, type DocumentPage, type DocumentQuery, type ReadYourWrites, type StoredDocument } from '../schemas.js'

export interface DocumentRead {
  // the live generation the document was read from; with its version it makes the ETag
  generation: number
  document: StoredDocument
}

// Read-your-writes (SPEC "Documents"): wait until the live generation has processed `waitFor` for the
// reader's tenant (a held tenant's documents are only as far as its hold, docs/projection-failures.md).
// The projection must exist first, so a wrong name is a 404 at once rather than a 504 later.
export const awaitPosition = async (
  sql: Sql,
  progress: ProjectionProgress,
  tenant: string,
  name: string,
  { waitFor, timeoutMs = DEFAULT_TIMEOUT_MS }: ReadYourWrites,
): Promise<void> => {
  if (waitFor === undefined) return
  await getProjection(sql, name)
  if (await progress.waitFor(name, tenant, waitFor, timeoutMs)) return
  const live = await progress.liveProgress(name)
  const position = live ? positionFor(live, tenant) : 0
  throw new Problem('timeout', { name, waitFor, position }, `projection ${name} did not reach position ${waitFor} within ${timeoutMs} ms (it is at ${position})`)
}

// One statement, so the live generation and the document are read from one snapshot, even across a swap.
export const getDocument = async (sql: Sql, tenant: string, name: string, id: string): Promise<DocumentRead> => {
  const [row] = await sql<(Partial<StoredDocumentText> & { generation: number })[]>`
    select p.live_generation as generation, d.id, d.document::text as document, d.version, d.updated_at as "updatedAt"
      from projections p
      left join projection_documents d
        on d.projection = p.name
       and d.generation = p.live_generation
       and d.tenant = ${tenant}
       and d.id = ${id}
       and d.document is not null
     where p.name = ${name}`
  if (!row) throw notFound(name)
  const { generation, ...document } = row
  if (document.id === undefined || document.id === null) throw new Problem('document-not-found', { name, id }, `projection ${name} has no document ${id}`)
  return { generation, document: exactDocument(document as StoredDocumentText) }
}

type StoredDocumentText = Omit<StoredDocument, 'document'> & { document: string }
type PageRow = StoredDocumentText & { sortKeys: string }

// Documents are read as jsonb text and parsed keeping every number (SPEC "Details"); routes write them
// back with stringifyExact.
const exactDocument = (row: StoredDocumentText): StoredDocument => ({ ...row, document: parseExact(row.document) as StoredDocument['document'] })

const live = (sql: Sql, tenant: string, name: string): Fragment => sql`
  from projection_documents
 where projection = ${name}
   and generation = (select live_generation from projections where name = ${name})
   and tenant = ${tenant}
   and document is not null`

// Exported for the EXPLAIN test: the page query as it runs, one statement over the live generation.
export const pageQuery = (sql: Sql, tenant: string, name: string, query: DocumentQuery, limit: number): Fragment => {
  const keys = sortKeys(query.orderBy)
  return sql`
    select id, document::text as document, version, updated_at as "updatedAt", ${sortKeysText(sql, keys)} as "sortKeys"
      ${live(sql, tenant, name)}
      ${conditions(sql, query)}
      ${query.cursor === undefined ? sql`` : afterCursor(sql, keys, decodeCursor(query.cursor, keys))}
      ${orderClause(sql, keys)}
     limit ${limit}`
}

const countQuery = (sql: Sql, tenant: string, name: string, query: DocumentQuery): Fragment =>
  sql`select count(*) as count ${live(sql, tenant, name)} ${conditions(sql, query)}`

// Keyset paging over the orderBy keys plus id (SPEC "Documents"): a document that exists throughout
// and keeps its sort keys is seen exactly once, whatever changes between pages.
export const queryDocuments = async (sql: Sql, tenant: string, name: string, query: DocumentQuery): Promise<DocumentPage> => {
  const limit = query.limit ?? 100
  const page = pageQuery(sql, tenant, name, query, limit + 1)
  // with count, both read one snapshot, so the total and the page agree even across a swap
  const [rows, total] = query.count
    ? await sql.begin('isolation level repeatable read read only', async (tx) => [
        await tx<PageRow[]>`${page}`,
        (await tx<{ count: number }[]>`${countQuery(sql, tenant, name, query)}`)[0]?.count ?? 0,
      ] as const)
    : [await sql<PageRow[]>`${page}`, undefined]
  if (rows.length === 0) await getProjection(sql, name)
  const documents = rows.slice(0, limit).map(({ sortKeys: _, ...document }) => exactDocument(document))
  const last = rows.length > limit ? rows[limit - 1]! : undefined
  return {
    documents,
    next: last ? encodeCursor(sortKeys(query.orderBy), last.sortKeys, last.id) : null,
    ...(total === undefined ? {} : { count: total }),
  }
}
