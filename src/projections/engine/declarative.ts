import { JsonNumber } from '../../events/exact-json.js'
import { checkDocumentId } from './document-id.js'
import { HandlerError } from './handler-error.js'
import { defineOwn, getField, MISSING, resolvePath, setField, undoAll, unsetField, valueOf, type Undo } from './json-path.js'
import type { DeclarativeDefinition, DeclarativeHandler } from '../definition-schema.js'
import type { Document, ProjectionEvent } from '../types.js'

// The document an event addresses. A documentId path missing from the event, or an empty string, addresses none
// (as a missing path skips an op); any other value that cannot be a document id fails the handler (document-id.ts).
export const documentIdOf = (definition: DeclarativeDefinition, event: ProjectionEvent): string | undefined => {
  const value = resolvePath(event, definition.documentId)
  if (value === MISSING || value === '') return undefined
  return checkDocumentId(value, `documentId ${definition.documentId}`)
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)

// inc computes in double precision (SPEC "Details"); an exact number counts by its value
const numberOf = (value: unknown): number | undefined =>
  typeof value === 'number' ? value : value instanceof JsonNumber ? value.valueOf() : undefined

// Applies one event's ops in SPEC order (set, unset, inc, push, merge, delete) to `document`, in place;
// returns it, or null when the document is deleted. All or nothing: an op that fails takes back the
// ops before it, so the document is as it was. A `$.` path missing from the event skips that field's op.
export const applyDeclarative = (handler: DeclarativeHandler, event: ProjectionEvent, document: Document): Document | null => {
  const undo: Undo = []
  try {
    applyOps(handler, event, document, undo)
  } catch (error) {
    undoAll(undo)
    throw error
  }
  return handler.delete === true ? null : document
}

const applyOps = (handler: DeclarativeHandler, event: ProjectionEvent, document: Document, undo: Undo): void => {
  for (const [field, raw] of Object.entries(handler.set ?? {})) {
    const value = valueOf(event, raw)
    if (value !== MISSING) setField(document, field, value, undo)
  }
  for (const field of handler.unset ?? []) unsetField(document, field, undo)
  for (const [field, raw] of Object.entries(handler.inc ?? {})) {
    const by = valueOf(event, raw)
    if (by === MISSING) continue
    const step = numberOf(by)
    if (step === undefined) throw new HandlerError(`inc ${field}: ${String(raw)} is not a number`)
    const current = numberOf(getField(document, field) ?? 0)
    if (current === undefined) throw new HandlerError(`inc ${field}: the document holds a non-number`)
    setField(document, field, current + step, undo)
  }
  for (const [field, raw] of Object.entries(handler.push ?? {})) {
    const value = valueOf(event, raw)
    if (value === MISSING) continue
    const current = getField(document, field)
    if (current === undefined) setField(document, field, [value], undo)
    else if (Array.isArray(current)) pushOnto(current, value, undo)
    else throw new HandlerError(`push ${field}: the document holds a non-array`)
  }
  if (handler.merge !== undefined) {
    const value = valueOf(event, handler.merge)
    if (value !== MISSING) {
      if (!isObject(value)) throw new HandlerError('merge: the value is not an object')
      // own keys copied as own fields: a `__proto__` key in event data becomes a `__proto__` field
      for (const key of Object.keys(value)) defineOwn(document, key, value[key], undo)
    }
  }
}

const pushOnto = (array: unknown[], value: unknown, undo: Undo): void => {
  const length = array.length
  array.push(value)
  undo.push(() => {
    array.length = length
  })
}
