import type { ErrorObject } from 'ajv'

// An Ajv error as one readable phrase naming the bad part: `handlers.Placed.inc must be object`,
// `body must NOT have additional properties (unknown field surprise)`.
export const describeAjvError = (error: ErrorObject, root: string): string => {
  const path = error.instancePath.slice(1).replaceAll('/', '.')
  const extra = error.keyword === 'additionalProperties' ? ` (unknown field ${String(error.params.additionalProperty)})` : ''
  return `${path || root} ${error.message ?? 'is invalid'}${extra}`
}
