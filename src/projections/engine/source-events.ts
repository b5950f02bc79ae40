import type { Sql, Tx } from '../../db/connect.js'
import { eventTextColumns } from '../../events/event-columns.js'
import { openEvent, parseStoredText } from '../../events/event-json.js'
import type { Keyring } from '../../events/keyring.js'
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
export const readSourceEvents = async (sql: Sql, source: ProjectionSource, after: number, head: number, options: ReadOptions): Promise<SourceBatch> =>
  parseBatch(await readSourceRows(sql, source, after, head, options), options)

interface ReadOptions {
  limit: number
  maxBytes: number
  exact: boolean
  tenant?: string
  // opens personal data (SPEC "Personal data"); undefined where no event can carry any
  keyring?: Keyring | undefined
}

type SourceRow = StoredEventText & { tenant: string }

// the rows of a batch as stored text, parsed when the batch is taken (parseBatch)
interface SourceRows {
  rows: SourceRow[]
  readTo: number
}

const readSourceRows = async (sql: Sql, source: ProjectionSource, after: number, head: number, { limit, maxBytes, tenant }: ReadOptions): Promise<SourceRows> => {
  if (head <= after) return { rows: [], readTo: after }
  const page = takePage(
    await eventPage<SourceRow>(
      sql,
      sql`tenant, ${eventTextColumns(sql)}`,
      sql`global_position > ${after} and global_position <= ${head} ${sourceConditions(sql, source)} ${tenant === undefined ? sql`` : sql`and tenant = ${tenant}`}`,
      { order: sql`global_position`, key: sql`global_position`, limit, maxBytes },
    ),
  )
  // the next batch starts right after the last event when more follow; else every match up to head is here
  return { rows: page.events, readTo: page.following !== null ? page.events.at(-1)!.globalPosition : head }
}

const parseBatch = ({ rows, readTo }: SourceRows, { exact, keyring }: ReadOptions): SourceBatch => ({ events: rows.map((row) => parseEvent(row, exact, keyring)), readTo })

// A worker's reads, each batch's successor read while the batch is applied: a catch-up then waits for the
// database's read once, not once per batch in series with applying it. A batch read ahead is used only by
// the read it anticipated (same source, checkpoint and options); it was bounded by the head of its time, which
// the head now can only have passed, so it is a batch like any other, and nothing is skipped or read twice.
// It costs at most one batch of stored text more, and only while a worker is behind: a read that reaches the head
// reads nothing ahead. The text is parsed when the batch is taken, as a read of its own would be, so parsing it never
// adds to what the event loop does at once while another batch is applied.
export class SourceReader {
  #ahead: { source: ProjectionSource; after: number; head: number; options: ReadOptions; rows: Promise<SourceRows> } | undefined

  constructor(private readonly sql: Sql) {}

  async read(source: ProjectionSource, after: number, head: number, options: ReadOptions): Promise<SourceBatch> {
    const ahead = this.#ahead
    this.#ahead = undefined
    const fresh = () => readSourceRows(this.sql, source, after, head, options)
    const anticipated = ahead && ahead.source === source && ahead.after === after && ahead.head <= head && sameOptions(ahead.options, options)
    const rows = await (anticipated ? ahead.rows.catch(fresh) : fresh())
    if (rows.readTo < head) this.#readAhead(source, rows.readTo, head, options)
    return parseBatch(rows, options)
  }

  // Starts reading the batch a read from `after` will want (the worker's next round), unless it is under way.
  prepare(source: ProjectionSource, after: number, head: number, options: ReadOptions): void {
    const ahead = this.#ahead
    if (head <= after || (ahead && ahead.source === source && ahead.after === after && sameOptions(ahead.options, options))) return
    this.#readAhead(source, after, head, options)
  }

  #readAhead(source: ProjectionSource, after: number, head: number, options: ReadOptions): void {
    const rows = readSourceRows(this.sql, source, after, head, options)
    // a failed read ahead is read again when it is wanted
    rows.catch(() => undefined)
    this.#ahead = { source, after, head, options, rows }
  }
}

const sameOptions = (a: ReadOptions, b: ReadOptions): boolean =>
  a.limit === b.limit && a.maxBytes === b.maxBytes && a.exact === b.exact && a.tenant === b.tenant

// Declarative handlers copy values into documents exactly (SPEC "Details"), so they get every number a double
// cannot keep as a JsonNumber; code handlers get plain JS values. Personal data is opened first (SPEC "Personal data":
// handlers read `$.personalData.<field>`, missing once the subject is forgotten).
export const parseEvent = <T extends StoredEventText & { tenant: string }>(row: T, exact: boolean, keyring: Keyring | undefined) =>
  parseStoredText(openEvent(row, keyring), exact ? parseExact : JSON.parse)
