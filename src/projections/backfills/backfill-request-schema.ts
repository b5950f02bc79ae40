import { Ajv } from 'ajv'
import { Type, type Static } from 'typebox'
import { describeAjvError } from '../../ajv-errors.js'
import { Problem } from '../../problems.js'
import { isTime, parseTime } from '../../events/times.js'
import { CATEGORY_PATTERN, EVENT_TYPE_PATTERN } from '../../events/schemas.js'
import type { Projector } from '../engine/apply-event.js'


export const CRITERIA = [
  'full-rebuild',
  'from-date',
  'date-range',
  'last-n-days',
  'event-number-range',
  'from-event-number',
  'last-n-events',
  'incremental',
] as const

export type Criteria = (typeof CRITERIA)[number]

export const BackfillRequestSchema = Type.Object(
  {
    criteria: Type.Union(CRITERIA.map((criteria) => Type.Literal(criteria))),
    from: Type.Optional(Type.String({ format: 'date-time' })),
    to: Type.Optional(Type.String({ format: 'date-time' })),
    days: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 36_500 })),
    fromPosition: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    toPosition: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    filter: Type.Optional(
      Type.Object(
        {
          types: Type.Optional(Type.Array(Type.String({ pattern: EVENT_TYPE_PATTERN }), { minItems: 1, maxItems: 256 })),
          categories: Type.Optional(Type.Array(Type.String({ pattern: CATEGORY_PATTERN }), { minItems: 1, maxItems: 256 })),
          metadata: Type.Optional(Type.Object({}, { additionalProperties: true })),
        },
        { additionalProperties: false },
      ),
    ),
    atomic: Type.Optional(Type.Boolean()),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    maxConcurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 })),
    requestedBy: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  { additionalProperties: false },
)

export type BackfillRequest = Omit<Static<typeof BackfillRequestSchema>, 'criteria'> & { criteria: Criteria }

// The parameters each criteria takes; any other selection parameter is a mistake worth a 400.
const PARAMETERS: Record<Criteria, { required: (keyof BackfillRequest)[]; optional: (keyof BackfillRequest)[] }> = {
  'full-rebuild': { required: [], optional: [] },
  'from-date': { required: ['from'], optional: [] },
  'date-range': { required: ['from', 'to'], optional: [] },
  'last-n-days': { required: ['days'], optional: [] },
  'event-number-range': { required: ['fromPosition', 'toPosition'], optional: [] },
  'from-event-number': { required: ['fromPosition'], optional: [] },
  'last-n-events': { required: ['count'], optional: [] },
  incremental: { required: [], optional: [] },
}
const SELECTION: (keyof BackfillRequest)[] = ['from', 'to', 'days', 'fromPosition', 'toPosition', 'count']

const ajv = new Ajv({ allErrors: false, strict: false })
// times PostgreSQL and JavaScript both read alike (SPEC "Details": years 1–9999), so a run never starts on one
// the database refuses
ajv.addFormat('date-time', isTime)
const validate = ajv.compile(BackfillRequestSchema)

const invalid = (pointer: string, message: string): Problem =>
  new Problem('validation-failed', { invalid: pointer }, `invalid backfill request: ${message}`)

// The same checks for POST …/backfills and for a ProjectionBackfillRequested event (SPEC "System events").
export const checkBackfillRequest = (input: unknown): BackfillRequest => {
  if (!validate(input)) {
    const error = validate.errors![0]!
    throw invalid(error.instancePath || '/', describeAjvError(error, 'body'))
  }
  const request = input as BackfillRequest
  const { required, optional } = PARAMETERS[request.criteria]
  for (const field of required) {
    if (request[field] === undefined) throw invalid(`/${field}`, `criteria ${request.criteria} needs ${field}`)
  }
  for (const field of SELECTION) {
    if (request[field] !== undefined && !required.includes(field) && !optional.includes(field)) {
      throw invalid(`/${field}`, `${field} does not apply to criteria ${request.criteria}`)
    }
  }
  if (request.from !== undefined && request.to !== undefined && parseTime(request.from)!.floor > parseTime(request.to)!.floor) {
    throw invalid('/to', 'to is before from')
  }
  if (request.fromPosition !== undefined && request.toPosition !== undefined && request.fromPosition > request.toPosition) {
    throw invalid('/toPosition', 'toPosition is below fromPosition')
  }
  if (request.criteria === 'incremental' && request.atomic === true) {
    throw invalid('/atomic', 'an incremental run applies the events after the live position to the live documents; it cannot be atomic')
  }
  return request
}

export const isAtomic = (request: BackfillRequest): boolean => request.atomic ?? request.criteria === 'full-rebuild'

// Partitions split the work by stream, which is only safe when no document gathers events of
// several streams (SPEC: "where the projection's documents are per stream").
export const checkConcurrency = (request: BackfillRequest, projector: Projector | undefined): number => {
  const partitions = request.maxConcurrency ?? 1
  if (partitions === 1) return 1
  if (projector?.kind !== 'declarative' || projector.definition.documentId !== '$.streamId') {
    throw invalid(
      '/maxConcurrency',
      'maxConcurrency above 1 needs a declarative projection whose documentId is $.streamId (documents per stream); this one may gather several streams into one document',
    )
  }
  return partitions
}
