import { JsonNumber } from '../../events/exact-json.js'
import { HandlerError } from './handler-error.js'

// SPEC "Details": a document id is a string or a number of at most 1,024 bytes (UTF-8). The bound keeps every key
// of projection_documents far below what its btree index can hold (2,704 bytes a row), so an id the database
// would refuse fails its own event's handler with this message instead of failing the batch with the database's.
export const MAX_DOCUMENT_ID_BYTES = 1024

const kindOf = (value: unknown): string => (value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`)

// The id as stored (numbers as their JSON text), or a HandlerError naming `what` (the documentId path, or the
// ctx call) and why; never the id itself, which may hold personal or another tenant's data.
export const checkDocumentId = (value: unknown, what: string): string => {
  let id: string
  if (typeof value === 'string') id = value
  else if (typeof value === 'number' && Number.isFinite(value)) id = String(value)
  else if (value instanceof JsonNumber) id = value.text
  else throw new HandlerError(`${what}: a document id is a string or a number, not ${kindOf(value)}`)
  if (id.length === 0) throw new HandlerError(`${what}: a document id may not be empty`)
  const bytes = Buffer.byteLength(id, 'utf8')
  if (bytes > MAX_DOCUMENT_ID_BYTES) throw new HandlerError(`${what}: the document id is ${bytes} bytes long; at most ${MAX_DOCUMENT_ID_BYTES} (UTF-8)`)
  if (id.includes('\u0000') || !id.isWellFormed()) throw new HandlerError(`${what}: a document id may not hold NUL or an unpaired surrogate`)
  return id
}
