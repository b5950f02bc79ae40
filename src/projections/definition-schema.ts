import { Type, type Static, type TSchema } from 'typebox'
import { Ajv } from 'ajv'
import { describeAjvError } from '../ajv-errors.js'
import { Problem } from '../problems.js'
import { CATEGORY_PATTERN, EVENT_TYPE_PATTERN } from '../events/schemas.js'
import { FORBIDDEN_SEGMENTS, isEventPath } from './engine/json-path.js'

export const PROJECTION_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$'
// a document field: dotted segments, none empty
const FIELD = '^[^.$\\u0000][^.\\u0000]*(\\.[^.\\u0000]+)*$'
const EVENT_PATH = '^\\$\\.[A-Za-z0-9_]+(\\.[A-Za-z0-9_:@=-]+)*$'

const Fields = <T extends TSchema>(value: T) => Type.Record(Type.String({ pattern: FIELD }), value, { additionalProperties: false })

export const DeclarativeHandlerSchema = Type.Object(
  {
    set: Type.Optional(Fields(Type.Unknown())),
    unset: Type.Optional(Type.Array(Type.String({ pattern: FIELD }))),
    inc: Type.Optional(Fields(Type.Union([Type.Number(), Type.String({ pattern: EVENT_PATH })]))),
    push: Type.Optional(Fields(Type.Unknown())),
    merge: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.String({ pattern: EVENT_PATH })])),
    delete: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
)

export const DeclarativeDefinitionSchema = Type.Object(
  {
    source: Type.Object(
      {
        types: Type.Optional(Type.Array(Type.String({ pattern: EVENT_TYPE_PATTERN }), { minItems: 1, maxItems: 256 })),
        categories: Type.Optional(Type.Array(Type.String({ pattern: CATEGORY_PATTERN }), { minItems: 1, maxItems: 256 })),
      },
      { additionalProperties: false },
    ),
    documentId: Type.String({ pattern: EVENT_PATH }),
    handlers: Type.Record(Type.String({ pattern: EVENT_TYPE_PATTERN }), DeclarativeHandlerSchema, {
      additionalProperties: false,
      minProperties: 1,
    }),
    snapshots: Type.Optional(
      Type.Object(
        { every: Type.Integer({ minimum: 1 }), keep: Type.Integer({ minimum: 1, maximum: 1000 }) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

export type DeclarativeDefinition = Static<typeof DeclarativeDefinitionSchema>
export type DeclarativeHandler = Static<typeof DeclarativeHandlerSchema>

const ajv = new Ajv({ allErrors: false, strict: false })
const validate = ajv.compile(DeclarativeDefinitionSchema)

// Returns the definition or throws a 400 naming the bad part (SPEC "Projections").
export const checkDefinition = (input: unknown): DeclarativeDefinition => {
  if (!validate(input)) {
    const error = validate.errors![0]!
    throw new Problem('validation-failed', { invalid: error.instancePath || '/' }, `invalid projection definition: ${describeAjvError(error, 'definition')}`)
  }
  const definition = input as DeclarativeDefinition
  for (const [type, handler] of Object.entries(definition.handlers)) {
    checkFieldNames(type, handler)
    for (const [field, value] of Object.entries(handler.inc ?? {})) {
      if (typeof value === 'string' && !isEventPath(value)) {
        throw new Problem('validation-failed', { invalid: `/handlers/${type}/inc/${field}` }, `invalid projection definition: handlers.${type}.inc.${field} must be a number or a $. path`)
      }
    }
    const sourced = definition.source.types === undefined || definition.source.types.includes(type)
    if (!sourced) {
      throw new Problem('validation-failed', { invalid: `/handlers/${type}` }, `invalid projection definition: handlers.${type} handles a type that source.types leaves out`)
    }
  }
  return definition
}

const fieldNamesOf = (handler: DeclarativeHandler): [string, string[]][] => [
  ['set', Object.keys(handler.set ?? {})],
  ['unset', handler.unset ?? []],
  ['inc', Object.keys(handler.inc ?? {})],
  ['push', Object.keys(handler.push ?? {})],
  ['merge', typeof handler.merge === 'object' && handler.merge !== null ? Object.keys(handler.merge) : []],
]

// SPEC "Details": no field name may reach a prototype, whatever walks it later
const checkFieldNames = (type: string, handler: DeclarativeHandler): void => {
  for (const [op, fields] of fieldNamesOf(handler)) {
    const field = fields.find((name) => name.split('.').some((segment) => FORBIDDEN_SEGMENTS.includes(segment)))
    if (field !== undefined) {
      throw new Problem('validation-failed', { invalid: `/handlers/${type}/${op}` }, `invalid projection definition: handlers.${type}.${op} field ${JSON.stringify(field)} holds a segment that may not be used (${FORBIDDEN_SEGMENTS.join(', ')})`)
    }
  }
}
