import type { Tx } from '../../db/connect.js'
import { parseExact, stringifyExact } from '../../events/exact-json.js'
import type { StoredDocument } from '../schemas.js'
import type { Document, DocumentQuery } from '../types.js'

interface Entry {
  tenant: string
  id: string
  document: Document | null
  version: number
  dirty: boolean
}

const keyOf = (tenant: string, id: string): string => `${tenant}\u0000${id}`

// The documents one batch touches, loaded once and written once at the end of the batch, inside the
// batch's transaction. A journal per event (of entries, never of copies) lets a failing event be taken
// back without losing the events before it; a batch that is all or nothing (a backfill's) goes without.
export class DocumentSession {
  #entries = new Map<string, Entry>()
  // the current event's writes: the entry each key held before it (its journal, to undo the event) and, in
  // #written, the keys; cleared, not reallocated, per event: a batch runs thousands of events
  #journal = new Map<string, Entry | undefined>()
  #written = new Set<string>()
  #inEvent = false

  constructor(
    private readonly tx: Tx,
    private readonly projection: string,
    private readonly generation: number,
    private readonly undoable = true,
    // declarative projections keep every number exactly (SPEC "Details"); code handlers get plain values
    private readonly exact = false,
  ) {}

  // Each key once: a batch of 1,000 events on one document asks for it 1,000 times, and the join below
  // would answer (and this parse) that document as many times.
  async preload(keys: { tenant: string; id: string }[]): Promise<void> {
    const missing = new Map<string, { tenant: string; id: string }>()
    for (const { tenant, id } of keys) {
      const key = keyOf(tenant, id)
      if (!this.#entries.has(key)) missing.set(key, { tenant, id })
    }
    if (missing.size === 0) return
    // Each document by its key (a lateral lookup, `limit 1` on the primary key): as a plain join, the planner may hash
    // the generation's every document against the keys (the function's rows are estimated at 100 whatever the batch
    // holds), so a live batch of a few events read all of them (docs/performance.md "Documents read by key").
    const rows = await this.tx<{ tenant: string; id: string; document: string | null; version: number }[]>`
      select d.tenant, d.id, d.document::text as document, d.version
        from jsonb_to_recordset(${this.tx.json([...missing.values()] as never)}) as k(tenant text, id text)
       cross join lateral (
         select d.tenant, d.id, d.document, d.version
           from projection_documents d
          where d.projection = ${this.projection}
            and d.generation = ${this.generation}
            and d.tenant = k.tenant
            and d.id = k.id
          limit 1
       ) as d`
    for (const [key, { tenant, id }] of missing) this.#entries.set(key, { tenant, id, document: null, version: 0, dirty: false })
    const parse = this.exact ? parseExact : JSON.parse
    for (const row of rows) {
      const document = row.document === null ? null : (parse(row.document) as Document)
      this.#entries.set(keyOf(row.tenant, row.id), { ...row, document, dirty: false })
    }
  }

  // The session's own document, no copy: declarative ops change it in place and take their changes back
  // when they fail (declarative.ts); a code handler is given a copy (apply-event.ts). A copy here would
  // make each event cost the size of its document.
  async get(tenant: string, id: string): Promise<{ document: Document | null; version: number }> {
    await this.preload([{ tenant, id }])
    return this.loaded(tenant, id)!
  }

  // get, without a promise, for a document already loaded (undefined otherwise)
  loaded(tenant: string, id: string): { document: Document | null; version: number } | undefined {
    return this.#entries.get(keyOf(tenant, id))
  }

  // A document that already carries this event's position (or a later one) has seen it: the write is
  // dropped, unless this same event wrote it first (a handler storing one document twice).
  put(tenant: string, id: string, document: Document | null, version: number): void {
    const key = keyOf(tenant, id)
    const current = this.#entries.get(key)
    const ownWrite = this.#inEvent && this.#written.has(key)
    if (!ownWrite && current && current.version >= version) return
    if (!ownWrite && this.#inEvent) {
      this.#written.add(key)
      if (this.undoable) this.#journal.set(key, current)
    }
    this.#entries.set(key, { tenant, id, document, version, dirty: true })
  }

  beginEvent(): void {
    this.#inEvent = true
  }

  endEvent(): void {
    this.#inEvent = false
    if (this.#written.size > 0) this.#written.clear()
    if (this.#journal.size > 0) this.#journal.clear()
  }

  undoEvent(): void {
    if (!this.undoable) throw new Error('this document session keeps no journal to undo an event with')
    for (const [key, entry] of this.#journal) {
      if (entry) this.#entries.set(key, entry)
      else this.#entries.delete(key)
    }
    this.endEvent()
  }

  // A deletion is written as a tombstone (document null) at its position, never removed, so a later
  // run over older events still sees that the document has moved past them.
  async flush(): Promise<void> {
    const dirty = [...this.#entries.values()].filter((entry) => entry.dirty)
    if (dirty.length === 0) return
    const rows = dirty.map(({ tenant, id, document, version }) => ({ tenant, id, document, version }))
    await this.tx`
      insert into projection_documents (projection, generation, tenant, id, document, version, updated_at)
      select ${this.projection}, ${this.generation}, r.tenant, r.id, r.document, r.version, now()
        from jsonb_to_recordset(${stringifyExact(rows)}::text::jsonb) as r(tenant text, id text, document jsonb, version bigint)
      on conflict (projection, generation, tenant, id) do update
        set document = excluded.document,
            version = excluded.version,
            updated_at = excluded.updated_at`
    for (const entry of dirty) entry.dirty = false
  }

  // A code handler's query sees the batch's own writes: they are flushed first.
  async query(tenant: string, query: DocumentQuery = {}): Promise<StoredDocument[]> {
    await this.flush()
    return this.tx<StoredDocument[]>`
      select id, document, version, updated_at as "updatedAt"
        from projection_documents
       where projection = ${this.projection}
         and generation = ${this.generation}
         and tenant = ${tenant}
         and document is not null
         ${query.filter ? this.tx`and document @> ${this.tx.json(query.filter as never)}` : this.tx``}
       order by id
       limit ${Math.min(query.limit ?? 100, 1000)}`
  }
}
