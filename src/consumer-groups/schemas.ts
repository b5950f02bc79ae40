import { Type, type Static } from 'typebox'
import { PROJECTION_NAME_PATTERN } from '../projections/definition-schema.js'
import { CATEGORY_PATTERN, EVENT_TYPE_PATTERN, Limit, Position, STREAM_ID_PREFIX_PATTERN, StoredEvent } from '../events/schemas.js'

// The wire shapes of SPEC "Consumer groups" (openapi.yaml's components of the same names).

// SPEC: names as projection names
export const GroupName = Type.String({ pattern: PROJECTION_NAME_PATTERN })
export const GroupParams = Type.Object({ name: GroupName })
export const ParkedEventParams = Type.Object({ name: GroupName, eventId: Type.String({ format: 'uuid' }) })

// Only a group's own tenant's events; system streams (`$…`) are never a group's source.
export const ConsumerGroupSource = Type.Object(
  {
    types: Type.Optional(Type.Array(Type.String({ pattern: EVENT_TYPE_PATTERN }), { minItems: 1, maxItems: 100 })),
    categories: Type.Optional(Type.Array(Type.String({ pattern: CATEGORY_PATTERN.replace('^\\$?', '^') }), { minItems: 1, maxItems: 100 })),
    streamIdPrefix: Type.Optional(Type.String({ pattern: STREAM_ID_PREFIX_PATTERN.replace('^\\$?', '^'), minLength: 1 })),
  },
  { additionalProperties: false },
)
export type ConsumerGroupSource = Static<typeof ConsumerGroupSource>

export const ConsumerGroupStart = Type.Union([Type.Literal('beginning'), Type.Literal('end'), Position])
export type ConsumerGroupStart = Static<typeof ConsumerGroupStart>

export const ConsumerGroupDefinition = Type.Object(
  {
    source: Type.Optional(ConsumerGroupSource),
    start: Type.Optional(ConsumerGroupStart),
    ackTimeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 600000 })),
    maxDeliveries: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
)
export type ConsumerGroupDefinition = Static<typeof ConsumerGroupDefinition>

export const ConsumerGroupStatus = Type.Object({
  name: Type.String(),
  source: ConsumerGroupSource,
  start: ConsumerGroupStart,
  ackTimeoutMs: Type.Integer(),
  maxDeliveries: Type.Integer(),
  position: Type.Integer(),
  head: Type.Integer(),
  lag: Type.Integer(),
  inFlight: Type.Integer(),
  parked: Type.Integer(),
  delivered: Type.Integer(),
  acked: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
})
export type ConsumerGroupStatus = Static<typeof ConsumerGroupStatus>

export const ConsumerGroupList = Type.Object({ groups: Type.Array(ConsumerGroupStatus) })
export type ConsumerGroupList = Static<typeof ConsumerGroupList>

export const PollQuery = Type.Object({
  max: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  waitMs: Type.Integer({ minimum: 0, maximum: 30000, default: 0 }),
})

export const Delivery = Type.Object({ attempt: Type.Integer(), deadline: Type.String({ format: 'date-time' }) })
export const DeliveredEvent = Type.Object({ ...StoredEvent.properties, delivery: Delivery })
export const PollResult = Type.Object({ events: Type.Array(DeliveredEvent) })
export type PollResult = Static<typeof PollResult>

const EventIds = Type.Array(Type.String({ format: 'uuid' }), { minItems: 1, maxItems: 1000 })

export const AckRequest = Type.Object({ eventIds: EventIds }, { additionalProperties: false })
export const AckResult = Type.Object({ acked: Type.Integer(), ignored: Type.Integer() })
export type AckResult = Static<typeof AckResult>

export const NackRequest = Type.Object(
  {
    eventIds: EventIds,
    retryAfterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600000 })),
    error: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
)
export type NackRequest = Static<typeof NackRequest>
export const NackResult = Type.Object({ nacked: Type.Integer(), ignored: Type.Integer() })
export type NackResult = Static<typeof NackResult>

export const ParkedQuery = Type.Object({ after: Type.Optional(Position), limit: Type.Optional(Limit) })
export const ParkedEvent = Type.Object({
  ...StoredEvent.properties,
  attempts: Type.Integer(),
  lastError: Type.Union([Type.String(), Type.Null()]),
  parkedAt: Type.String({ format: 'date-time' }),
})
export const ParkedEventPage = Type.Object({ events: Type.Array(ParkedEvent), next: Type.Union([Type.Integer(), Type.Null()]) })

export const ReplayRequest = Type.Object({ eventIds: Type.Optional(EventIds) }, { additionalProperties: false })
export const ReplayResult = Type.Object({ replayed: Type.Integer() })
