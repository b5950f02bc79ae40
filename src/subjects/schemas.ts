import { Type, type Static } from 'typebox'
import { Subject } from '../events/schemas.js'

// The wire shapes of /subjects (openapi.yaml's components of the same names).

export const SubjectParams = Type.Object({ subject: Subject })

export const SubjectRebuild = Type.Object({
  projection: Type.String(),
  backfillId: Type.String({ format: 'uuid' }),
})

export const ForgetResult = Type.Object({
  subject: Type.String(),
  forgottenAt: Type.String({ format: 'date-time' }),
  events: Type.Integer(),
  rebuilds: Type.Array(SubjectRebuild),
})
export type ForgetResult = Static<typeof ForgetResult>

export const SubjectStatus = Type.Object({
  subject: Type.String(),
  events: Type.Integer(),
  forgotten: Type.Boolean(),
  forgottenAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  pending: Type.Array(Type.String()),
})
export type SubjectStatus = Static<typeof SubjectStatus>
