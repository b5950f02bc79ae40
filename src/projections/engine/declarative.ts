import { JsonNumber } from '../../events/exact-json.js'
import { checkDocumentId } from './document-id.js'
import { HandlerError } from './handler-error.js'
import {
  defineOwn,
  getField,
  isEventPath,
  MISSING,
  pushOnto,
  resolvePath,
  setField,
  splitEventPath,
  splitField,
  undoAll,
  unsetField,
  valueOf,
  type Segments,
  type Undo,
} from './json-path.js'
import type { DeclarativeDefinition, DeclarativeHandler } from '../definition-schema.js'
import type { Document, ProjectionEvent } from '../types.js'

type Source = { path: Segments } | { literal: unknown }

// A handler as its ops run it: fields and `$.` paths split, entries listed, once per handler instead of per event.
interface Plan {
  set: [Segments, Source, string][]
  unset: Segments[]
  inc: [Segments, Source, string][]
  push: [Segments, Source, string][]
  merge: Source | undefined
}

const sourceOf = (raw: unknown): Source => (isEventPath(raw) ? { path: splitEventPath(raw) } : { literal: raw })
const fieldsOf = (fields: Record<string, unknown> | undefined): [Segments, Source, string][] =>
  Object.entries(fields ?? {}).map(([field, raw]) => [splitField(field), sourceOf(raw), field])

// definitions are loaded once and never changed in place, so a handler's plan (and a documentId's path) is made once
const plans = new WeakMap<DeclarativeHandler, Plan>()
const planOf = (handler: DeclarativeHandler): Plan => {
  let plan = plans.get(handler)
  if (!plan) {
    const merge = handler.merge === undefined ? undefined : sourceOf(handler.merge)
    plan = { set: fieldsOf(handler.set), unset: (handler.unset ?? []).map(splitField), inc: fieldsOf(handler.inc), push: fieldsOf(handler.push), merge }
    plans.set(handler, plan)
  }
  return plan
}
const idPaths = new Map<string, Segments>()
const idPathOf = (documentId: string): Segments => {
  let path = idPaths.get(documentId)
  if (!path) {
    if (idPaths.size >= 1000) idPaths.clear()
    path = splitEventPath(documentId)
    idPaths.set(documentId, path)
  }
  return path
}

// The document an event addresses. A documentId path missing from the event, or an empty string, addresses none
// (as a missing path skips an op); any other value that cannot be a document id fails the handler (document-id.ts).
export const documentIdOf = (definition: DeclarativeDefinition, event: ProjectionEvent): string | undefined => {
  const value = resolvePath(event, idPathOf(definition.documentId))
  if (value === MISSING || value === '') return undefined
  return checkDocumentId(value, `documentId ${definition.documentId}`)
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)

// inc computes in double precision (SPEC "Details"); an exact number counts by its value
const numberOf = (value: unknown): number | undefined =>
  typeof value === 'number' ? value : value instanceof JsonNumber ? value.valueOf() : undefined

const describe = (source: Source): string => String('path' in source ? `$.${source.path.join('.')}` : source.literal)

// Applies one event's ops in SPEC order (set, unset, inc, push, merge, delete) to `document`, in place;
// returns it, or null when the document is deleted. All or nothing: an op that fails takes back the
// ops before it, so the document is as it was. A `$.` path missing from the event skips that field's op.
export const applyDeclarative = (handler: DeclarativeHandler, event: ProjectionEvent, document: Document): Document | null => {
  const undo: Undo = []
  try {
    applyOps(planOf(handler), event, document, undo)
  } catch (error) {
    undoAll(undo)
    throw error
  }
  return handler.delete === true ? null : document
}

const applyOps = (plan: Plan, event: ProjectionEvent, document: Document, undo: Undo): void => {
  for (const [field, source] of plan.set) {
    const value = valueOf(event, source)
    if (value !== MISSING) setField(document, field, value, undo)
  }
  for (const field of plan.unset) unsetField(document, field, undo)
  for (const [field, source, name] of plan.inc) {
    const by = valueOf(event, source)
    if (by === MISSING) continue
    const step = numberOf(by)
    if (step === undefined) throw new HandlerError(`inc ${name}: ${describe(source)} is not a number`)
    const current = numberOf(getField(document, field) ?? 0)
    if (current === undefined) throw new HandlerError(`inc ${name}: the document holds a non-number`)
    setField(document, field, current + step, undo)
  }
  for (const [field, source, name] of plan.push) {
    const value = valueOf(event, source)
    if (value === MISSING) continue
    const current = getField(document, field)
    if (current === undefined) setField(document, field, [value], undo)
    else if (Array.isArray(current)) pushOnto(current, value, undo)
    else throw new HandlerError(`push ${name}: the document holds a non-array`)
  }
  if (plan.merge !== undefined) {
    const value = valueOf(event, plan.merge)
    if (value !== MISSING) {
      if (!isObject(value)) throw new HandlerError('merge: the value is not an object')
      // own keys copied as own fields: a `__proto__` key in event data becomes a `__proto__` field
      for (const key of Object.keys(value)) defineOwn(document, key, value[key], undo)
    }
  }
}
