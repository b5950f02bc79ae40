import type { DocumentSession } from './document-session.js'
import { applyDeclarative, documentIdOf } from './declarative.js'
import { checkDocumentId } from './document-id.js'
import type { DeclarativeDefinition, DeclarativeHandler } from '../definition-schema.js'
import type { CodeProjection, Document, ProjectionContext, ProjectionEvent, ProjectionSource } from '../types.js'

// One engine, two kinds: both apply an event through the batch's document session.
export type Projector =
  | { kind: 'declarative'; definition: DeclarativeDefinition }
  | { kind: 'code'; module: CodeProjection }

// The one way to a Projector: a declarative projection runs the definition given (its live one, or the one
// of the generation being built); a code projection runs its module from PROJECTIONS_DIR, when this
// instance loaded it.
export const projectorFor = (
  projection: { name: string; kind: 'declarative' | 'code' },
  definition: DeclarativeDefinition | null,
  code: ReadonlyMap<string, CodeProjection>,
): Projector | undefined => {
  if (projection.kind === 'declarative') return definition ? { kind: 'declarative', definition } : undefined
  const module = code.get(projection.name)
  return module ? { kind: 'code', module } : undefined
}

export const sourceOf = (projector: Projector): ProjectionSource =>
  projector.kind === 'declarative' ? projector.definition.source : projector.module.source

// by own names only: an event type called toString or __proto__ that no handler names is ignored (SPEC "Details")
export const handles = (projector: Projector, type: string): boolean =>
  Object.hasOwn(projector.kind === 'declarative' ? projector.definition.handlers : projector.module.handlers, type)

// The document keys an event will touch, when they can be known before running it (declarative only),
// so a batch loads all its documents in one query.
export const documentKeyOf = (projector: Projector, event: ProjectionEvent): { tenant: string; id: string } | undefined => {
  if (projector.kind !== 'declarative' || !handles(projector, event.type)) return undefined
  try {
    const id = documentIdOf(projector.definition, event)
    return id === undefined ? undefined : { tenant: event.tenant, id }
  } catch {
    // an id that cannot be one: nothing to load; applying the event fails it, in its turn
    return undefined
  }
}

// Synchronous for a declarative event whose document the batch has loaded (the usual case), so a batch of them
// costs no promise per event; a promise otherwise.
export const applyEvent = (projector: Projector, session: DocumentSession, event: ProjectionEvent): Promise<void> | undefined => {
  if (projector.kind === 'declarative') return applyDeclarativeEvent(projector.definition, session, event)
  const handler = handles(projector, event.type) ? projector.module.handlers[event.type] : undefined
  if (typeof handler !== 'function') return undefined
  return Promise.resolve(handler(event, contextFor(session, event)))
}

const applyDeclarativeEvent = (definition: DeclarativeDefinition, session: DocumentSession, event: ProjectionEvent): Promise<void> | undefined => {
  const handler = Object.hasOwn(definition.handlers, event.type) ? definition.handlers[event.type] : undefined
  const id = handler && documentIdOf(definition, event)
  if (!handler || id === undefined) return undefined
  const loaded = session.loaded(event.tenant, id)
  if (!loaded) return session.get(event.tenant, id).then((entry) => applyToDocument(handler, session, event, id, entry))
  applyToDocument(handler, session, event, id, loaded)
  return undefined
}

// a document (or its tombstone) carries the position of the last event applied to it: never apply one twice
const applyToDocument = (
  handler: DeclarativeHandler,
  session: DocumentSession,
  event: ProjectionEvent,
  id: string,
  { document, version }: { document: Document | null; version: number },
): void => {
  if (version < event.globalPosition) session.put(event.tenant, id, applyDeclarative(handler, event, document ?? {}), event.globalPosition)
}

// A code handler works on copies, both ways: what it changes counts once it stores it, and a throw
// leaves the session's documents as they were. Ids are checked as declarative ones are (document-id.ts): a bad
// one fails this event's handler.
const contextFor = (session: DocumentSession, event: ProjectionEvent): ProjectionContext => ({
  load: async (id) => {
    const { document } = await session.get(event.tenant, checkDocumentId(id, 'ctx.load'))
    return document === null ? undefined : structuredClone(document)
  },
  // loaded first, so the session knows the stored version it must not write over
  store: async (raw, document) => {
    const id = checkDocumentId(raw, 'ctx.store')
    await session.preload([{ tenant: event.tenant, id }])
    session.put(event.tenant, id, structuredClone(document), event.globalPosition)
  },
  delete: async (raw) => {
    const id = checkDocumentId(raw, 'ctx.delete')
    await session.preload([{ tenant: event.tenant, id }])
    session.put(event.tenant, id, null, event.globalPosition)
  },
  query: (query) => session.query(event.tenant, query),
})
