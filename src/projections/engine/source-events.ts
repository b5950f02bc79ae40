import type { Sql, Tx } from '../../db/connect.js'
import { eventTextColumns } from '../../events/event-columns.js'
import { parseStoredText } from '../../events/event-json.js'
import { eventPage, takePage } from '../../events/event-page.js'
import { parseExact } from '../../events/exact-json.js'
import type { StoredEventText } from '../../events/read-log-text.js'
import { SYSTEM_TENANT } from '../../events/types.js'
import type { ProjectionEvent, ProjectionSource } from '../types.js'

export interface SourceBatch {
  events: ProjectionEvent[]
  // the position this batch has looked through: the checkpoint after applying it
  readTo: number
}

// The events a source takes, as `and …` conditions: every tenant's (documents belong to the event's tenant),
// system events only when the source names a `$` category.
export const sourceConditions = (sql: Sql | Tx, { types, categories }: ProjectionSource) => {
  const system = categories?.some((category) => category.startsWith('$')) ?? false
  return sql`
    ${system ? sql`` : sql`and tenant <> ${SYSTEM_TENANT}`}
    ${types?.length ? sql`and type = any(${types}::text[])` : sql``}
    ${categories?.length ? sql`and category = any(${categories}::text[])` : sql``}`
}

// Projections read every tenant's events (documents belong to the event's tenant); system events
// only when the source names a `$` category. Bounded by the gap-safe head like every log read, and by
// `limit` events and `maxBytes` of them (always one), so large events cost a worker bounded memory. With
// `tenant`, that tenant's only (a held tenant's catch-up, docs/projection-failures.md).
export const readSourceEvents = async (
  sql: Sql,
  source: ProjectionSource,
  after: number,
  head: number,
  { limit, maxBytes, exact, tenant }: { limit: number; maxBytes: number; exact: boolean; tenant?: string },
): Promise<SourceBatch> => {
  if (head <= after) return { events: [], readTo: after }
  const rows = await eventPage<StoredEventText & { tenant: string }>(
    sql,
    sql`tenant, ${eventTextColumns(sql)}`,
    sql`global_position > ${after} and global_position <= ${head} ${sourceConditions(sql, source)} ${tenant === undefined ? sql`` : sql`and tenant = ${tenant}`}`,
    { order: sql`global_position`, key: sql`global_position`, limit, maxBytes },
  )
  const page = takePage(rows)
  const events = page.events.map((row) => parseEvent(row, exact))
  // the next batch starts right after the last event when more follow; else every match up to head is here
  const readTo = page.following !== null ? events.at(-1)!.globalPosition : head
  return { events, readTo }
}

type ReadOptions = Parameters<typeof readSourceEvents>[4]

// A worker's reads, each batch's successor read while the batch is applied: a catch-up then waits for the
// database's read once, not once per batch in series with applying it. A batch read ahead is used only by
// the read it anticipated (same source, checkpoint and options); it was bounded by the head of its time, which
// the head now can only have passed, so it is a batch like any other, and nothing is skipped or read twice.
// It costs at most one batch of memory more, and only while a worker is behind: a read that reaches the head reads
// nothing ahead.
export class SourceReader {
  #ahead: { source: ProjectionSource; after: number; head: number; options: ReadOptions; batch: Promise<SourceBatch> } | undefined

  constructor(private readonly sql: Sql) {}

  async read(source: ProjectionSource, after: number, head: number, options: ReadOptions): Promise<SourceBatch> {
    const ahead = this.#ahead
    this.#ahead = undefined
    const fresh = () => readSourceEvents(this.sql, source, after, head, options)
    const batch = ahead && ahead.source === source && ahead.after === after && ahead.head <= head && sameOptions(ahead.options, options)
      ? await ahead.batch.catch(fresh)
      : await fresh()
    if (batch.readTo < head) this.#readAhead(source, batch.readTo, head, options)
    return batch
  }

  #readAhead(source: ProjectionSource, after: number, head: number, options: ReadOptions): void {
    const batch = readSourceEvents(this.sql, source, after, head, options)
    // a failed read ahead is read again when it is wanted
    batch.catch(() => undefined)
    this.#ahead = { source, after, head, options, batch }
  }
}

const sameOptions = (a: ReadOptions, b: ReadOptions): boolean =>
  a.limit === b.limit && a.maxBytes === b.maxBytes && a.exact === b.exact && a.tenant === b.tenant

// Declarative handlers copy values into documents exactly (SPEC "Details"), so they get every number a double
// cannot keep as a JsonNumber; code handlers get plain JS values.
export const parseEvent = <T extends StoredEventText & { tenant: string }>(row: T, exact: boolean) =>
  parseStoredText(row, exact ? parseExact : JSON.parse)
