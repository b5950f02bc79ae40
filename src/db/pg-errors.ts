import { Problem } from '../problems.js'

interface PgError {
  code?: string
  constraint_name?: string
}

const isPgError = (error: unknown): error is PgError =>
  typeof error === 'object' && error !== null && (error as { name?: string }).name === 'PostgresError'

// A statement run on its own (its own transaction) that the server answered with an error rolled back and wrote
// nothing. Any other failure (a connection lost mid-call) leaves unknown whether it committed.
export const isRefusedByServer = (error: unknown): boolean => isPgError(error)

export const isUniqueViolation = (error: unknown, constraint: string): boolean =>
  isPgError(error) && error.code === '23505' && error.constraint_name === constraint

// 40001 serialization failure, 40P01 deadlock: nobody's fault, and gone when the transaction is tried again
export const isRetryableConflict = (error: unknown): boolean =>
  isPgError(error) && (error.code === '40001' || error.code === '40P01')

// Client data the database refuses (a \u0000 in JSON text, nesting too deep for jsonb, a number out of
// range) is the client's fault and must be a 400, never a 500. Everything else stays unknown.
export const toProblem = (error: unknown): Problem | undefined => {
  if (!isPgError(error) || !error.code) return undefined
  if (error.code.startsWith('22')) return new Problem('validation-failed', {}, 'the request holds a value the store cannot keep (e.g. \\u0000 in text or a number out of range)')
  // events_take_personal_data() (sql/0019): personal data for a subject forgotten since its key was fetched
  if (error.code === '23514' && error.constraint_name === 'events_subject_forgotten') {
    return new Problem('subject-forgotten', {}, 'the subject of this personal data is forgotten: its personal data can no longer be stored')
  }
  if (error.code === '54001') return new Problem('validation-failed', {}, 'the request is nested too deeply')
  // what the retries inside the server (src/projections/projection-lock.ts) could not settle
  if (isRetryableConflict(error)) return new Problem('conflict', { retryable: true }, 'a concurrent change got in the way; try again')
  return undefined
}
