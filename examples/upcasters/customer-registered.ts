import type { CodeUpcasters } from '../../src/events/upcaster-types.js'

// A code upcaster does what the declarative steps (rename, defaults, remove) cannot: here, split one field in two.
// Copy this file into PROJECTIONS_DIR (compiled to .js, or as .ts when the server runs under tsx); a module may
// export `upcasters` beside a projection or on its own. Reads then return every CustomerRegistered event at
// schema version 2, with `metadata.schemaVersion: 2`; the stored events stay as they were written.

interface CustomerRegisteredV1 {
  customerId: string
  name: string
}

interface CustomerRegisteredV2 {
  customerId: string
  firstName: string
  lastName: string
}

export const upcasters: CodeUpcasters = {
  CustomerRegistered: {
    1: (data): CustomerRegisteredV2 => {
      const { name, ...rest } = data as CustomerRegisteredV1
      const [firstName = '', ...others] = name.trim().split(/\s+/)
      return { ...rest, firstName, lastName: others.join(' ') }
    },
  },
}
