import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Sql } from '../src/db/connect.js'
import type { Keyring } from '../src/events/keyring.js'
import { ProblemRef } from '../src/http/schemas.js'
import type { ProjectionRunner } from '../src/projections/runner.js'
import { forgetSubject } from '../src/subjects/forget-subject.js'
import { ForgetResult, SubjectParams, SubjectStatus } from '../src/subjects/schemas.js'
import type { SubjectRebuilds } from '../src/subjects/subject-rebuilds.js'
import { getSubject } from '../src/subjects/subject-status.js'

export interface SubjectRoutesOptions {
  sql: Sql
  runner: ProjectionRunner
  keyring: Keyring
  rebuilds: SubjectRebuilds
}

const problems = { 400: ProblemRef, 500: ProblemRef }

// SPEC "Personal data": a subject's status, and forgetting it (admin, src/http/access.ts). Subjects are per tenant.
// Nothing of the subject is logged: its id may itself say who the person is.
export const subjectRoutes: FastifyPluginAsyncTypebox<SubjectRoutesOptions> = async (app, { sql, runner, keyring, rebuilds }) => {
  app.get('/:subject', {
    schema: { params: SubjectParams, response: { 200: SubjectStatus, 404: ProblemRef, ...problems } },
  }, async (request) => getSubject(sql, request.tenant, request.params.subject))

  app.delete('/:subject', {
    schema: { params: SubjectParams, response: { 202: ForgetResult, ...problems } },
  }, async (request, reply) => {
    const result = await forgetSubject(sql, runner, keyring, rebuilds, request.tenant, request.params.subject)
    request.log.info({ events: result.events, rebuilds: result.rebuilds.length }, 'subject forgotten')
    return reply.code(202).send(result)
  })
}
