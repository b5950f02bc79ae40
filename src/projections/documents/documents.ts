import type { Sql } from '../../db/connect.js'
import { parseExact } from '../../events/exact-json.js'
import { DEFAULT_MAX_PAGE_BYTES } from '../../events/event-page.js'
import { Problem } from '../../problems.js'
import { encodeCursor } from './document-query.js'
import { readDocumentPage, type DocumentChunks, type PageRow, type StoredDocumentText } from './document-page.js'
import { positionFor, type ProjectionProgress } from '../progress.js'
import { notFound } from '../definitions.js'
import { DEFAULT_TIMEOUT_MS, type DocumentPage, type DocumentQuery, type ReadYourWrites, type StoredDocument } from '../schemas.js'

export interface DocumentRead {
  // the live generation the document was read from; with its version it makes the ETag
  generation: number
  document: StoredDocument
}

// Read-your-writes (SPEC "Documents"): wait until the live generation has processed `waitFor` for the
// reader's tenant (a held tenant's documents are only as far as its hold, docs/projection-failures.md).
// A wrong name is a 404 at once rather than a 504 later: the wait's own read of the live checkpoint finds no projection.
export const awaitPosition = async (
  sql: Sql,
  progress: ProjectionProgress,
  tenant: string,
  name: string,
  { waitFor, timeoutMs = DEFAULT_TIMEOUT_MS }: ReadYourWrites,
): Promise<void> => {
  if (waitFor === undefined) return
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

// Documents are read as jsonb text and parsed keeping every number (SPEC "Details"); routes write them
// back with stringifyExact.
export const exactDocument = (row: StoredDocumentText): StoredDocument => ({ ...row, document: parseExact(row.document) as StoredDocument['document'] })

// The `next` of a page read with readDocumentPage, once its chunks are read: after its last document, if any follows.
export const nextCursor = ({ page, keys }: DocumentChunks): string | null =>
  page.following !== null && page.anchor ? encodeCursor(keys, page.anchor.k, page.anchor.i) : null

// Keyset paging over the orderBy keys plus id (SPEC "Documents"): a document that exists throughout
// and keeps its sort keys is seen exactly once, whatever changes between pages. A page ends at `limit`
// documents or `maxBytes` of them, whichever comes first; `next` continues after its last document.
// The page whole, for callers that want it in memory (routes write it as it is read: document-page.ts).
export const queryDocuments = async (sql: Sql, tenant: string, name: string, query: DocumentQuery, maxBytes = DEFAULT_MAX_PAGE_BYTES, chunkBytes = maxBytes): Promise<DocumentPage> => {
  const chunks = await readDocumentPage(sql, tenant, name, query, maxBytes, chunkBytes)
  const rows: PageRow[] = []
  for (let chunk = await chunks.page.next(); chunk !== null; chunk = await chunks.page.next()) rows.push(...chunk)
  return {
    documents: rows.map(({ sortKeys: _, ...document }) => exactDocument(document)),
    next: nextCursor(chunks),
    ...(chunks.count === undefined ? {} : { count: chunks.count }),
  }
}
