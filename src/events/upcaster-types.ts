import { Type, type Static } from 'typebox'
import type { StoredEvent } from './schemas.js'

// The published shape of upcasters (SPEC "Schema evolution"). An event's schema version is
// `metadata.schemaVersion` (absent = 1); an upcaster step brings data of one type from version `from` to `from + 1`.

// Declarative, registered over HTTP with PUT /upcasters/{type}. Within a step: `rename` first, then `remove`,
// then `defaults` (which fill only missing fields). Field names may be dotted paths into `data` (`address.zip`).
// Field names are checked as paths in the core (upcast-step.ts), where the message can name the bad one.
const SchemaVersion = Type.Integer({ minimum: 1, maximum: 1_000_000 })
const Field = Type.String({ minLength: 1, maxLength: 1024 })

export const UpcasterStep = Type.Object(
  {
    from: SchemaVersion,
    to: SchemaVersion,
    rename: Type.Optional(Type.Record(Type.String(), Field, { maxProperties: 256 })),
    defaults: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 256 })),
    remove: Type.Optional(Type.Array(Field, { maxItems: 256 })),
  },
  { additionalProperties: false },
)
export type UpcasterStep = Static<typeof UpcasterStep>

export const UpcasterInput = Type.Object({ steps: Type.Array(UpcasterStep, { minItems: 1, maxItems: 100 }) }, { additionalProperties: false })

export const Upcaster = Type.Object({
  type: Type.String(),
  steps: Type.Array(UpcasterStep),
  createdAt: Type.String(),
  updatedAt: Type.String(),
})
export type Upcaster = Static<typeof Upcaster>

export const UpcasterList = Type.Object({ upcasters: Type.Array(Upcaster) })

// Code, from modules in PROJECTIONS_DIR exporting `upcasters`:
//
//   import type { CodeUpcasters } from 'annalist/src/events/upcaster-types.js'
//   export const upcasters: CodeUpcasters = {
//     PaymentReceived: {
//       1: (data) => ({ ...(data as object), cents: Math.round((data as { amount: number }).amount * 100) }),
//     },
//   }
//
// A function gets the event's data at version `from` (a copy it may change) and the event as it is at that
// version, and returns the data at version `from + 1`. It runs on every read, so it must be pure and fast.
// Where a code step and a declarative step start at the same version of the same type, the code step wins.
export type CodeUpcaster = (data: unknown, event: StoredEvent) => unknown

export type CodeUpcasters = Record<string, Record<number, CodeUpcaster>>
