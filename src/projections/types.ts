import type { StoredEvent } from '../events/schemas.js'
import type { DeclarativeDefinition } from './definition-schema.js'
import type { DocumentQuery as HttpDocumentQuery, ProjectionView, StoredDocument } from './schemas.js'

// The published shape of a projection, for code modules in PROJECTIONS_DIR (examples/projections/).

// the events a projection takes, the same for code modules as for declarative definitions
export type ProjectionSource = DeclarativeDefinition['source']

// An event as a projection handler sees it: the stored event (upcast) plus the tenant that wrote it.
export interface ProjectionEvent extends StoredEvent {
  tenant: string
}

export type Document = Record<string, unknown>

// ctx.query takes the filter and limit of the HTTP query (POST /projections/{name}/query)
export type DocumentQuery = Pick<HttpDocumentQuery, 'filter' | 'limit'>

// Bound to this projection, the event's tenant and the batch's transaction.
export interface ProjectionContext {
  load(id: string): Promise<Document | undefined>
  store(id: string, document: Document): Promise<void>
  delete(id: string): Promise<void>
  query(query?: DocumentQuery): Promise<StoredDocument[]>
}

export type ProjectionHandler = (event: ProjectionEvent, ctx: ProjectionContext) => Promise<void> | void

export interface CodeProjection {
  name: string
  source: ProjectionSource
  handlers: Record<string, ProjectionHandler>
}

export type OpName = 'set' | 'unset' | 'inc' | 'push' | 'merge' | 'delete'

export type SnapshotPolicy = NonNullable<DeclarativeDefinition['snapshots']>

export type ProjectionKind = ProjectionView['kind']
export type ProjectionStatus = ProjectionView['status']
