import type { Sql, Tx } from '../../db/connect.js'
import { ChunkedPage } from '../../events/chunked-page.js'
import { takePage, type PageColumns } from '../../events/event-page.js'
import type { DocumentQuery, StoredDocument } from '../schemas.js'
import { getProjection } from '../definitions.js'
import { afterCursor, conditions, decodeCursor, orderClause, sortKeys, sortKeysText, type Fragment, type SortKey } from './document-query.js'

export type StoredDocumentText = Omit<StoredDocument, 'document'> & { document: string }
// `sortKeys`: the row's sort keys as jsonb text, for the cursor of the page it ends
export type PageRow = StoredDocumentText & { sortKeys: string }

// where a page ends or the next read starts: after this document, with these sort keys
export interface DocumentAnchor {
  k: string
  i: string
}

export interface DocumentChunks {
  // a page of documents; what follows it is keyed by document id
  page: ChunkedPage<PageRow, string, DocumentAnchor>
  keys: SortKey[]
  count?: number
}

const live = (sql: Sql, tenant: string, name: string): Fragment => sql`
  from projection_documents
 where projection = ${name}
   and generation = (select live_generation from projections where name = ${name})
   and tenant = ${tenant}
   and document is not null`

// Exported for the EXPLAIN test: one read of a page as it runs, one statement over the live generation, after
// `after` (a page's cursor, or the last document of the read before). Like a page of events (event-page.ts) it stops
// early once it holds `maxBytes` of document text, always taking one document (SPEC "Details": MAX_PAGE_BYTES); the
// cut is made in the database, so documents past it are measured, never sent.
export const pageQuery = (sql: Sql, tenant: string, name: string, query: DocumentQuery, limit: number, maxBytes: number, after?: DocumentAnchor): Fragment => {
  const keys = sortKeys(query.orderBy)
  return sql`
    select id, document::text as document, version, "updatedAt", "sortKeys", following, following_bytes as "followingBytes", page_bytes as "pageBytes"
      from (
        select id, document, version, updated_at as "updatedAt", ${sortKeysText(sql, keys)} as "sortKeys",
               row_number() over page as page_index,
               sum(octet_length(document::text)) over page as page_bytes,
               lead(id) over page as following,
               lead(octet_length(document::text)) over page as following_bytes
          ${live(sql, tenant, name)}
          ${conditions(sql, query)}
          ${after === undefined ? sql`` : afterCursor(sql, keys, after)}
        window page as (${orderClause(sql, keys)} rows unbounded preceding)
          ${orderClause(sql, keys)}
         limit ${limit}
      ) as page
     where page_index = 1
        or page_bytes <= ${maxBytes}
     order by page_index`
}

const countQuery = (sql: Sql, tenant: string, name: string, query: DocumentQuery): Fragment =>
  sql`select count(*) as count ${live(sql, tenant, name)} ${conditions(sql, query)}`

// A page of documents (keyset paging: SPEC "Documents"), read as chunks of at most `chunkBytes` of them (always one),
// each read after the last document of the one before, so a route writes each chunk before it reads the next
// (chunked-page.ts). Between chunks, as between pages, a document that exists throughout and keeps its sort keys is
// seen exactly once. With `count`, the page is one read in the count's snapshot, so the two agree even across a swap.
export const readDocumentPage = async (sql: Sql, tenant: string, name: string, query: DocumentQuery, maxBytes: number, chunkBytes: number): Promise<DocumentChunks> => {
  const keys = sortKeys(query.orderBy)
  const start = query.cursor === undefined ? undefined : decodeCursor(query.cursor, keys)
  const reader = (db: Sql | Tx) => async (after: DocumentAnchor | undefined, limit: number, bytes: number) =>
    takePage<PageRow, string>(await db<(PageRow & PageColumns<string>)[]>`${pageQuery(sql, tenant, name, query, limit, bytes, after ?? start)}`)
  const anchorOf = (row: PageRow): DocumentAnchor => ({ k: row.sortKeys, i: row.id })
  const bounds = { limit: query.limit ?? 100, maxBytes, chunkBytes }
  const [page, count] = query.count
    ? await sql.begin('isolation level repeatable read read only', async (tx) => [
        // chunkBytes = maxBytes: the first read is the whole page, so the transaction is never read from again
        await ChunkedPage.open(reader(tx), anchorOf, { ...bounds, chunkBytes: maxBytes }),
        (await tx<{ count: number }[]>`${countQuery(sql, tenant, name, query)}`)[0]?.count ?? 0,
      ] as const)
    : [await ChunkedPage.open(reader(sql), anchorOf, bounds), undefined]
  if (page.empty) await getProjection(sql, name)
  return { page, keys, ...(count === undefined ? {} : { count }) }
}
