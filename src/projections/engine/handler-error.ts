// A handler that cannot apply to this event or document (push onto a non-array, inc of a non-number, a document id
// that cannot be one): the projection's failure rules take over (SPEC "Projections").
export class HandlerError extends Error {}
