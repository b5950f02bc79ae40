import { Type, type Static } from 'typebox'

// The event store's wire shapes (openapi.yaml's components of the same names), each one TypeBox schema the routes
// validate and serialise with, and one type of the same name the core returns. test/contract/openapi-routes.test.ts
// keeps them and openapi.yaml in agreement.

export const STREAM_ID_PATTERN = '^\\$?[A-Za-z0-9_.:@=-]{1,256}$'
export const STREAM_ID_PREFIX_PATTERN = '^\\$?[A-Za-z0-9_.:@=-]{0,256}$'
export const EVENT_TYPE_PATTERN = '^[A-Za-z0-9_.:-]{1,256}$'
// a category is the part of a stream id before its first `-`
export const CATEGORY_PATTERN = '^\\$?[A-Za-z0-9_.:@=]{1,256}$'

// SPEC "Personal data": a data subject, e.g. a customer id
export const SUBJECT_PATTERN = '^[A-Za-z0-9_.:@=-]{1,256}$'

export const StreamId = Type.String({ pattern: STREAM_ID_PATTERN })
export const Subject = Type.String({ pattern: SUBJECT_PATTERN })
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
  // only on events that named a subject; personalData only on those that carried it, null once forgotten
  subject: Type.Optional(Type.String()),
  personalData: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
  forgotten: Type.Optional(Type.Literal(true)),
})
export type StoredEvent = Static<typeof StoredEvent>

export const ExpectedVersion = Type.Union([
  Type.Integer({ minimum: 0 }),
  Type.Literal('no_stream'),
  Type.Literal('exists'),
  Type.Literal('any'),
])
export type ExpectedVersion = Static<typeof ExpectedVersion>

export const InputEvent = Type.Object(
  {
    eventId: Type.Optional(Type.String({ format: 'uuid' })),
    type: EventType,
    data: Type.Unknown(),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    subject: Type.Optional(Subject),
    // stored encrypted under the subject's key; it needs `subject`
    personalData: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
)
export type InputEvent = Static<typeof InputEvent>

// MAX_EVENTS_PER_APPEND is configuration: the body's schema is made for it
export const appendRequest = (maxEventsPerAppend: number) =>
  Type.Object(
    {
      expectedVersion: Type.Optional(ExpectedVersion),
      events: Type.Array(InputEvent, { minItems: 1, maxItems: maxEventsPerAppend }),
    },
    { additionalProperties: false },
  )
export type AppendRequest = Static<ReturnType<typeof appendRequest>>

export const AppendResult = Type.Object({
  streamId: Type.String(),
  firstVersion: Type.Integer(),
  lastVersion: Type.Integer(),
  firstPosition: Type.Integer(),
  lastPosition: Type.Integer(),
  duplicate: Type.Optional(Type.Boolean()),
})
export type AppendResult = Static<typeof AppendResult>

// POST /appends (SPEC "Append to several streams at once"): each entry a single append's body plus its stream
export const MAX_APPENDS_PER_REQUEST = 100

export const appendsRequest = (maxEventsPerAppend: number) =>
  Type.Object(
    {
      appends: Type.Array(
        Type.Object(
          {
            streamId: StreamId,
            expectedVersion: Type.Optional(ExpectedVersion),
            events: Type.Array(InputEvent, { minItems: 1, maxItems: maxEventsPerAppend }),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: MAX_APPENDS_PER_REQUEST },
      ),
    },
    { additionalProperties: false },
  )
export type AppendsRequest = Static<ReturnType<typeof appendsRequest>>

export const StreamAppendResult = Type.Object({
  streamId: Type.String(),
  firstVersion: Type.Integer(),
  lastVersion: Type.Integer(),
  firstPosition: Type.Integer(),
  lastPosition: Type.Integer(),
})
export type StreamAppendResult = Static<typeof StreamAppendResult>

export const AppendsResult = Type.Object({
  appends: Type.Array(StreamAppendResult),
  duplicate: Type.Optional(Type.Boolean()),
})
export type AppendsResult = Static<typeof AppendsResult>

export const StreamReadQuery = Type.Object({
  from: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  direction: Type.Optional(Type.Union([Type.Literal('forward'), Type.Literal('backward')])),
  limit: Type.Optional(Limit),
  until: Type.Optional(Timestamp),
})
export type StreamReadQuery = Static<typeof StreamReadQuery>

export const StreamPage = Type.Object({
  streamId: Type.String(),
  version: Type.Integer(),
  events: Type.Array(StoredEvent),
  next: Type.Union([Type.Integer(), Type.Null()]),
})
export type StreamPage = Static<typeof StreamPage>

export const Snapshot = Type.Object({
  streamId: Type.String(),
  version: Type.Integer(),
  state: Type.Unknown(),
  schemaVersion: Type.Integer(),
  createdAt: Type.String(),
})
export type Snapshot = Static<typeof Snapshot>

// a stream's newest snapshot without its state (GET /streams/{streamId})
export const SnapshotSummary = Type.Pick(Snapshot, ['version', 'schemaVersion', 'createdAt'])
export type SnapshotSummary = Static<typeof SnapshotSummary>

export const StreamInfo = Type.Object({
  streamId: Type.String(),
  category: Type.String(),
  version: Type.Integer(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  snapshot: Type.Union([SnapshotSummary, Type.Null()]),
})
export type StreamInfo = Static<typeof StreamInfo>

export const StreamListQuery = Type.Object({
  category: Type.Optional(StreamId),
  prefix: Type.Optional(Type.String({ pattern: STREAM_ID_PREFIX_PATTERN })),
  after: Type.Optional(StreamId),
  limit: Type.Optional(Limit),
})
export type StreamListQuery = Static<typeof StreamListQuery>

export const StreamSummary = Type.Object({ streamId: Type.String(), category: Type.String(), version: Type.Integer(), updatedAt: Type.String() })
export type StreamSummary = Static<typeof StreamSummary>

export const StreamList = Type.Object({
  streams: Type.Array(StreamSummary),
  next: Type.Union([Type.String(), Type.Null()]),
})
export type StreamList = Static<typeof StreamList>

// GET /events and GET /subscribe take the same filters (SPEC "Subscribe")
export const LogReadQuery = Type.Object({
  after: Type.Optional(Position),
  limit: Type.Optional(Limit),
  type: Type.Optional(Type.Array(EventType, { maxItems: 100 })),
  category: Type.Optional(StreamId),
  streamId: Type.Optional(Type.String({ pattern: STREAM_ID_PREFIX_PATTERN })),
  since: Type.Optional(Timestamp),
  until: Type.Optional(Timestamp),
  correlationId: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
})
export type LogReadQuery = Static<typeof LogReadQuery>

export const LogPage = Type.Object({
  events: Type.Array(StoredEvent),
  next: Type.Union([Type.Integer(), Type.Null()]),
  head: Type.Integer(),
})
export type LogPage = Static<typeof LogPage>

// a stream version named in a path or query: a snapshot's, or the one a load stops at
export const Version = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })

export const SnapshotList = Type.Object({ snapshots: Type.Array(Snapshot) })

export const SnapshotInput = Type.Object(
  { state: Type.Unknown(), schemaVersion: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647 })) },
  { additionalProperties: false },
)
export type SnapshotInput = Static<typeof SnapshotInput>

export const LoadQuery = Type.Object({ untilVersion: Type.Optional(Version), until: Type.Optional(Timestamp) })
export type LoadQuery = Static<typeof LoadQuery>

// written as text a page at a time (src/events/load.ts), so only the documentation and the contract test read it
export const LoadedStream = Type.Object({
  streamId: Type.String(),
  version: Type.Integer(),
  snapshot: Type.Union([Snapshot, Type.Null()]),
  events: Type.Array(StoredEvent),
  snapshotDue: Type.Boolean(),
})
