import { Type, type Static } from 'typebox'

export const PROBLEM_CODES = {
  'validation-failed': { status: 400, title: 'Validation failed' },
  'wrong-expected-version': { status: 409, title: 'Wrong expected version' },
  'duplicate-event-id': { status: 409, title: 'Duplicate event id' },
  'stream-not-found': { status: 404, title: 'Stream not found' },
  'projection-not-found': { status: 404, title: 'Projection not found' },
  'document-not-found': { status: 404, title: 'Document not found' },
  'backfill-not-found': { status: 404, title: 'Backfill not found' },
  'backfill-in-progress': { status: 409, title: 'Backfill in progress' },
  conflict: { status: 409, title: 'Conflict' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'not-acceptable': { status: 406, title: 'Not acceptable' },
  'snapshot-not-found': { status: 404, title: 'Snapshot not found' },
  'consumer-group-not-found': { status: 404, title: 'Consumer group not found' },
  'subject-not-found': { status: 404, title: 'Subject not found' },
  'subject-forgotten': { status: 409, title: 'Subject forgotten' },
  'not-found': { status: 404, title: 'Not found' },
  // not in SPEC's list: the per-key rate limit and the per-key subscription limit
  'too-many-requests': { status: 429, title: 'Too many requests' },
  // not in SPEC's list: a request whose headers and body did not arrive within REQUEST_TIMEOUT_MS
  'request-timeout': { status: 408, title: 'Request timeout' },
  timeout: { status: 504, title: 'Timeout' },
  internal: { status: 500, title: 'Internal server error' },
} as const

export type ProblemCode = keyof typeof PROBLEM_CODES

export const PROBLEM_TYPE_BASE = 'https://annalist.dev/problems/'

// The body of every problem response (RFC 9457), its code's own fields beside these (openapi.yaml's *Problem).
export const ProblemBody = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
  },
  { additionalProperties: true, $id: 'Problem' },
)
export type ProblemBody = Static<typeof ProblemBody>

export class Problem extends Error {
  readonly status: number
  readonly title: string

  constructor(
    readonly code: ProblemCode,
    readonly extra: Record<string, unknown> = {},
    readonly detail: string = PROBLEM_CODES[code].title,
  ) {
    super(detail)
    this.status = PROBLEM_CODES[code].status
    this.title = PROBLEM_CODES[code].title
  }

  toJSON(): ProblemBody {
    // the RFC 9457 members come last, so an extra field can never overwrite them
    return {
      ...this.extra,
      type: PROBLEM_TYPE_BASE + this.code,
      title: this.title,
      status: this.status,
      detail: this.detail,
      code: this.code,
    }
  }
}

// SPEC "Read a stream": a stream with no events (at `until`, when given) is 404 stream-not-found.
export const streamNotFound = (streamId: string, at?: string): Problem =>
  new Problem('stream-not-found', { streamId }, `stream ${streamId} has no events${at ? ` at ${at}` : ''}`)
