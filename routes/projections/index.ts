import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../../src/db/connect.js'
import { ProblemRef } from '../../src/http/schemas.js'
import { checkDefinition } from '../../src/projections/definition-schema.js'
import { rollbackProjection } from '../../src/projections/backfills/backfill-commands.js'
import { defineProjection, removeProjection, resetProjection, restartProjection, skipFailedEvent, startProjection, stopProjection } from '../../src/projections/management.js'
import type { ProjectionRunner } from '../../src/projections/runner.js'
import { projectionViewFor, viewOf, type TenantScope } from '../../src/projections/projection-view.js'
import { ProjectionList, ProjectionParams, ProjectionView } from '../../src/projections/schemas.js'
import { tenantScope } from '../../src/http/tenant.js'
import { getProjection, listProjections } from '../../src/projections/definitions.js'
import type { LogHead } from '../../src/events/log-head.js'

export interface ProjectionRoutesOptions {
  sql: Sql
  runner: ProjectionRunner
  logHead: LogHead
}

const problems = { 400: ProblemRef, 404: ProblemRef, 500: ProblemRef }

const scopeOf = (tenant: string | undefined): TenantScope => (tenant === undefined ? 'every' : { tenant })

// restart and skip act on the held tenants the caller sees (tenantScope; docs/projection-failures.md)
const ACTIONS: Record<string, (sql: Sql, runner: ProjectionRunner, name: string, tenant?: string) => Promise<unknown>> = {
  start: startProjection,
  stop: stopProjection,
  restart: restartProjection,
  skip: skipFailedEvent,
  reset: resetProjection,
  rollback: rollbackProjection,
}

export const projectionRoutes: FastifyPluginAsyncTypebox<ProjectionRoutesOptions> = async (app, { sql, runner, logHead }) => {
  // head as /events reports it, so `lag: 0` means every event acknowledged before the request is applied
  const view = async (name: string, tenant: string | undefined) => viewOf(sql, await getProjection(sql, name), await logHead.catchUp(), scopeOf(tenant))

  // read keys get a failure's position, not its message (projection-view.ts)
  app.get('/', { schema: { response: { 200: ProjectionList, 400: ProblemRef, 500: ProblemRef } } }, async (request) => ({
    projections: await Promise.all(
      (await listProjections(sql)).map(async (row) =>
        projectionViewFor(await viewOf(sql, row, await logHead.catchUp(), scopeOf(tenantScope(request))), request.role === 'admin'),
      ),
    ),
  }))

  app.get('/:name', { schema: { params: ProjectionParams, response: { 200: ProjectionView, ...problems } } }, async (request) =>
    projectionViewFor(await view(request.params.name, tenantScope(request)), request.role === 'admin'),
  )

  app.put('/:name', {
    schema: {
      params: ProjectionParams,
      body: Type.Unknown(),
      response: { 200: ProjectionView, 201: ProjectionView, 400: ProblemRef, 409: ProblemRef, 413: ProblemRef, 415: ProblemRef, 500: ProblemRef },
    },
  }, async (request, reply) => {
    const { created, view } = await defineProjection(sql, runner, request.params.name, checkDefinition(request.body), await logHead.catchUp(), scopeOf(tenantScope(request)))
    return reply.code(created ? 201 : 200).send(view)
  })

  app.delete('/:name', { schema: { params: ProjectionParams, response: { 204: Type.Null(), 409: ProblemRef, ...problems } } }, async (request, reply) => {
    await removeProjection(sql, runner, request.params.name)
    return reply.code(204).send(null)
  })

  for (const [action, act] of Object.entries(ACTIONS)) {
    app.post(`/:name/${action}`, {
      schema: { params: ProjectionParams, response: { 200: ProjectionView, 409: ProblemRef, ...problems } },
    }, async (request) => {
      await act(sql, runner, request.params.name, tenantScope(request))
      return view(request.params.name, tenantScope(request))
    })
  }
}
