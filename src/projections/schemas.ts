import { Type, type Static } from 'typebox'
import { Limit, Position } from '../events/schemas.js'
import { PROJECTION_NAME_PATTERN } from './definition-schema.js'
import { MAX_ORDER_BY, MAX_WHERE, PATH_PATTERN, WHERE_OPS } from './documents/document-query.js'

// The projections' wire shapes (openapi.yaml's components of these names, ProjectionView being its
// ProjectionStatus and BackfillView its Backfill): one TypeBox schema the routes validate and serialise with, and
// one type of the same name the core returns. test/contract/openapi-routes.test.ts keeps them and openapi.yaml in
// agreement. Definitions and backfill requests are checked by the core itself: definition-schema.ts and
// backfills/backfill-request-schema.ts.

export const ProjectionName = Type.String({ pattern: PROJECTION_NAME_PATTERN })
export const ProjectionParams = Type.Object({ name: ProjectionName })

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

// SPEC "Management": a projection's status
export const ProjectionView = Type.Object({
  name: Type.String(),
  kind: Type.Union([Type.Literal('declarative'), Type.Literal('code')]),
  status: Type.Union([
    Type.Literal('running'),
    Type.Literal('stopped'),
    Type.Literal('failed'),
    Type.Literal('rebuilding'),
    Type.Literal('catching-up'),
  ]),
  position: Type.Integer(),
  head: Type.Integer(),
  lag: Type.Integer(),
  documents: Type.Integer(),
  lastError: Nullable(
    Type.Object(
      { position: Type.Integer(), eventId: Type.String(), message: Type.String(), generation: Type.Optional(Type.Integer()) },
      { additionalProperties: true },
    ),
  ),
  // tenants held at a failing event (docs/projection-failures.md), those the caller's scope covers
  failures: Type.Array(
    Type.Object({
      tenant: Type.String(),
      generation: Type.Integer(),
      position: Type.Integer(),
      eventId: Type.String(),
      message: Type.String(),
    }),
  ),
  definitionVersion: Type.Integer(),
  updatedAt: Type.String(),
  definition: Nullable(Type.Object({}, { additionalProperties: true })),
})
export type ProjectionView = Static<typeof ProjectionView>

export const ProjectionList = Type.Object({ projections: Type.Array(ProjectionView) })

export const StoredDocument = Type.Object({
  id: Type.String(),
  document: Type.Record(Type.String(), Type.Unknown()),
  version: Type.Integer(),
  updatedAt: Type.String(),
})
export type StoredDocument = Static<typeof StoredDocument>

export const DocumentPage = Type.Object({
  documents: Type.Array(StoredDocument),
  next: Nullable(Type.String()),
  count: Type.Optional(Type.Integer()),
})
export type DocumentPage = Static<typeof DocumentPage>

export const DocumentPath = Type.String({ minLength: 1, maxLength: 1024, pattern: PATH_PATTERN })
export const DocumentCursor = Type.String({ minLength: 1, maxLength: 65536 })

// op/value agreement (`in` takes an array, …) is checked in the core, where the message can name it
export const WhereClause = Type.Object(
  { path: DocumentPath, op: Type.Enum(WHERE_OPS), value: Type.Unknown() },
  { additionalProperties: false },
)
export type WhereClause = Static<typeof WhereClause>

export const OrderKey = Type.Object(
  { path: DocumentPath, direction: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])) },
  { additionalProperties: false },
)
export type OrderKey = Static<typeof OrderKey>

export const DocumentQuery = Type.Object(
  {
    filter: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    where: Type.Optional(Type.Array(WhereClause, { maxItems: MAX_WHERE })),
    orderBy: Type.Optional(Type.Array(OrderKey, { maxItems: MAX_ORDER_BY })),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(DocumentCursor),
    count: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
export type DocumentQuery = Static<typeof DocumentQuery>

// read-your-writes on every document read, POST …/query included (SPEC "Details")
export const DEFAULT_TIMEOUT_MS = 5000
export const ReadYourWrites = Type.Object({
  waitFor: Type.Optional(Position),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 30000, default: DEFAULT_TIMEOUT_MS })),
})
export type ReadYourWrites = Static<typeof ReadYourWrites>

export const ProjectionSnapshot = Type.Object({
  id: Type.String({ format: 'uuid' }),
  position: Type.Integer(),
  documents: Type.Integer(),
  createdAt: Type.String(),
  reason: Type.String(),
  generation: Type.Integer(),
  definitionVersion: Type.Integer(),
})
export type ProjectionSnapshot = Static<typeof ProjectionSnapshot>

export const ProjectionSnapshotList = Type.Object({ snapshots: Type.Array(ProjectionSnapshot) })

export const BackfillStatus = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('swapping'),
  Type.Literal('completed'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
])
export type BackfillStatus = Static<typeof BackfillStatus>

// SPEC "Backfills and rebuilds": the published view of a run (`request` as accepted, backfill-request-schema.ts)
export const BackfillView = Type.Object({
  id: Type.String(),
  projection: Type.String(),
  status: BackfillStatus,
  criteria: Type.String(),
  atomic: Type.Boolean(),
  maxConcurrency: Type.Integer(),
  processed: Type.Integer(),
  total: Nullable(Type.Integer()),
  percent: Type.Number(),
  eventsPerSecond: Type.Number(),
  etaSeconds: Nullable(Type.Number()),
  createdAt: Type.String(),
  startedAt: Nullable(Type.String()),
  finishedAt: Nullable(Type.String()),
  error: Nullable(Type.String()),
  requestedBy: Nullable(Type.String()),
  correlationId: Nullable(Type.String()),
  generation: Type.Integer(),
  snapshotId: Nullable(Type.String()),
  request: Type.Object({}, { additionalProperties: true }),
})
export type BackfillView = Static<typeof BackfillView>

export const BackfillList = Type.Object({ backfills: Type.Array(BackfillView) })
