import { Type } from 'typebox'

export const TENANT_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$'

// Every route's problem statuses point at the one problem body (src/problems.ts), added to the app by name.
export const ProblemRef = Type.Ref('Problem')
