import { Type } from 'typebox'

export const STREAM_ID_PATTERN = '^\\$?[A-Za-z0-9_.:@=-]{1,256}$'
export const STREAM_ID_PREFIX_PATTERN = '^\\$?[A-Za-z0-9_.:@=-]{0,256}$'
export const EVENT_TYPE_PATTERN = '^[A-Za-z0-9_.:-]{1,256}$'
export const TENANT_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$'

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
  },
  { additionalProperties: true, $id: 'Problem' },
)

export const ProblemRef = Type.Ref('Problem')

export const StreamId = Type.String({ pattern: STREAM_ID_PATTERN })
export const EventType = Type.String({ pattern: EVENT_TYPE_PATTERN })
export const Position = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })
export const Limit = Type.Integer({ minimum: 1, maximum: 1000, default: 100 })
export const Timestamp = Type.String({ format: 'date-time' })

export const StreamParams = Type.Object({ streamId: StreamId })

export const StoredEvent = Type.Object({
  globalPosition: Type.Integer(),
  streamId: Type.String(),
  streamVersion: Type.Integer(),
  eventId: Type.String({ format: 'uuid' }),
  type: Type.String(),
  data: Type.Unknown(),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Type.String(),
})

// GET /events and GET /subscribe take the same filters (SPEC "Subscribe")
export const LogQuery = Type.Object({
  after: Type.Optional(Position),
  limit: Type.Optional(Limit),
  type: Type.Optional(Type.Array(EventType, { maxItems: 100 })),
  category: Type.Optional(StreamId),
  streamId: Type.Optional(Type.String({ pattern: STREAM_ID_PREFIX_PATTERN })),
  since: Type.Optional(Timestamp),
  until: Type.Optional(Timestamp),
  correlationId: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
})
