import type { StoredEvent } from './types.js'

// The published shape of upcasters (SPEC "Schema evolution"). An event's schema version is
// `metadata.schemaVersion` (absent = 1); an upcaster step brings data of one type from version `from` to `from + 1`.

// Declarative, registered over HTTP with PUT /upcasters/{type}. Within a step: `rename` first, then `remove`,
// then `defaults` (which fill only missing fields). Field names may be dotted paths into `data` (`address.zip`).
export interface UpcasterStep {
  from: number
  to: number
  rename?: Record<string, string>
  defaults?: Record<string, unknown>
  remove?: string[]
}

export interface UpcasterDefinition {
  type: string
  steps: UpcasterStep[]
  createdAt: string
  updatedAt: string
}

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
