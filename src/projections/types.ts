import type { StoredEvent } from '../events/types.js'

// The published shape of a projection, for code modules in PROJECTIONS_DIR (examples/projections/).

export interface ProjectionSource {
  types?: string[]
  categories?: string[]
}

// An event as a projection handler sees it: the stored event (upcast) plus the tenant that wrote it.
export interface ProjectionEvent extends StoredEvent {
  tenant: string
}

export type Document = Record<string, unknown>

export interface StoredDocument {
  id: string
  document: Document
  version: number
  updatedAt: string
}

export interface DocumentQuery {
  filter?: Document
  limit?: number
}

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

export interface DeclarativeHandler {
  set?: Record<string, unknown>
  unset?: string[]
  inc?: Record<string, number | string>
  push?: Record<string, unknown>
  merge?: unknown
  delete?: boolean
}

export interface SnapshotPolicy {
  every: number
  keep: number
}

export interface DeclarativeDefinition {
  source: ProjectionSource
  documentId: string
  handlers: Record<string, DeclarativeHandler>
  snapshots?: SnapshotPolicy
}

export type ProjectionKind = 'declarative' | 'code'
export type ProjectionStatus = 'running' | 'stopped' | 'failed' | 'rebuilding' | 'catching-up'
