import type { Sql } from '../../db/connect.js'
import { parseExact } from '../../events/exact-json.js'
import { DEFAULT_MAX_PAGE_BYTES } from '../../events/event-page.js'
import { Problem } from '../../problems.js'
import {
  afterCursor,
  conditions,
  decodeCursor,
  encodeCursor,
  orderClause,
  sortKeys,
  sortKeysText,
  type DocumentQueryInput,
  type Fragment,
} from './document-query.js'
import type { ProjectionProgress } from '../progress.js'
import { getProjection, notFound } from '../definitions.js'
import type { StoredDocument } from '../types.js'

export interface DocumentRead {
  // the live generation the document was read from; with its version it makes the ETag
  generation: number
  document: StoredDocument
}

export interface DocumentPage {
  documents: StoredDocument[]
  next: string | null
  count?: number
}

export const DEFAULT_TIMEOUT_MS = 5000

// Read-your-writes (SPEC "Documents"): wait until the live generation has processed `waitFor`.
// The projection must exist first, so a wrong name is a 404 at once rather than a 504 later.
export const awaitPosition = async (
  sql: Sql,
  progress: ProjectionProgress,
  name: string,
  { waitFor, timeoutMs = DEFAULT_TIMEOUT_MS }: { waitFor?: number; timeoutMs?: number },
): Promise<void> => {
  if (waitFor === undefined) return
  await getProjection(sql, name)
  if (await progress.waitFor(name, waitFor, timeoutMs)) return
  const position = (await progress.livePosition(name)) ?? 0
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
// `followed`: a matching document comes after this one in the page order
type PageRow = StoredDocumentText & { sortKeys: string; followed: boolean }

// Documents are read as jsonb text and parsed keeping every number (SPEC "Details"); routes write them
// back with stringifyExact.
const exactDocument = (row: StoredDocumentText): StoredDocument => ({ ...row, document: parseExact(row.document) as StoredDocument['document'] })

const live = (sql: Sql, tenant: string, name: string): Fragment => sql`
  from projection_documents
 where projection = ${name}
   and generation = (select live_generation from projections where name = ${name})
   and tenant = ${tenant}
   and document is not null`

// Exported for the EXPLAIN test: the page query as it runs, one statement over the live generation. Like a page of
// events (event-page.ts) it stops early once it holds `maxBytes` of document text, always taking one document
// (SPEC "Details": MAX_PAGE_BYTES); the cut is made in the database, so documents past it are measured, never sent.
export const pageQuery = (sql: Sql, tenant: string, name: string, query: DocumentQueryInput, limit: number, maxBytes: number): Fragment => {
  const keys = sortKeys(query.orderBy)
  return sql`
    select id, document::text as document, version, "updatedAt", "sortKeys", followed
      from (
        select id, document, version, updated_at as "updatedAt", ${sortKeysText(sql, keys)} as "sortKeys",
               row_number() over page as page_index,
               sum(octet_length(document::text)) over page as page_bytes,
               lead(id) over page is not null as followed
          ${live(sql, tenant, name)}
          ${conditions(sql, query)}
          ${query.cursor === undefined ? sql`` : afterCursor(sql, keys, decodeCursor(query.cursor, keys))}
        window page as (${orderClause(sql, keys)} rows unbounded preceding)
          ${orderClause(sql, keys)}
         limit ${limit}
      ) as page
     where page_index = 1
        or page_bytes <= ${maxBytes}
     order by page_index`
}

const countQuery = (sql: Sql, tenant: string, name: string, query: DocumentQueryInput): Fragment =>
  sql`select count(*) as count ${live(sql, tenant, name)} ${conditions(sql, query)}`

// Keyset paging over the orderBy keys plus id (SPEC "Documents"): a document that exists throughout
// and keeps its sort keys is seen exactly once, whatever changes between pages. A page ends at `limit`
// documents or `maxBytes` of them, whichever comes first; `next` continues after its last document.
export const queryDocuments = async (sql: Sql, tenant: string, name: string, query: DocumentQueryInput, maxBytes = DEFAULT_MAX_PAGE_BYTES): Promise<DocumentPage> => {
  const page = pageQuery(sql, tenant, name, query, query.limit ?? 100, maxBytes)
  // with count, both read one snapshot, so the total and the page agree even across a swap
  const [rows, total] = query.count
    ? await sql.begin('isolation level repeatable read read only', async (tx) => [
        await tx<PageRow[]>`${page}`,
        (await tx<{ count: number }[]>`${countQuery(sql, tenant, name, query)}`)[0]?.count ?? 0,
      ] as const)
    : [await sql<PageRow[]>`${page}`, undefined]
  if (rows.length === 0) await getProjection(sql, name)
  const documents = rows.map(({ sortKeys: _, followed: __, ...document }) => exactDocument(document))
  const last = rows.at(-1)
  return {
    documents,
    next: last?.followed ? encodeCursor(sortKeys(query.orderBy), last.sortKeys, last.id) : null,
    ...(total === undefined ? {} : { count: total }),
  }
}
