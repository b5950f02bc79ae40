import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { randomUUID } from 'node:crypto'
import { buildBrokenApp, LEAKS } from '../helpers/broken-app.js'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildTestApp } from '../helpers/test-app.js'
import { streamId } from '../helpers/fixtures.js'

// /subjects and the personal fields of events, checked against openapi.yaml like every other route.
const contract = await OpenapiContract.load()
const { app } = await buildTestApp(t)

const ONE = '/subjects/{subject}'
const APPEND = '/streams/{streamId}/events'
const READ = '/streams/{streamId}/events'

const callOn = (target: FastifyInstance) => async (t: Test, path: string, options: InjectOptions & { url: string }) => {
  const res = await target.inject(options)
  contract.check(t, String(options.method ?? 'GET'), path, res)
  return res
}
const call = callOn(app)
const subjectId = (): string => `customer-${randomUUID().slice(0, 8)}`
const personalEvent = (subject: string) => ({ type: 'CustomerRegistered', data: { plan: 'gold' }, subject, personalData: { name: 'Ada' } })

t.test('a subject is read, forgotten (202), forgotten again, and its events read as documented', async (t) => {
  const subject = subjectId()
  const id = streamId('customer')
  t.equal((await call(t, APPEND, { method: 'POST', url: `/streams/${id}/events`, payload: { events: [personalEvent(subject), { type: 'Named', data: {}, subject }] } })).statusCode, 201)
  t.same((await call(t, READ, { url: `/streams/${id}/events` })).json().events[0].personalData, { name: 'Ada' })
  t.match((await call(t, ONE, { url: `/subjects/${subject}` })).json(), { subject, events: 1, forgotten: false, forgottenAt: null, pending: [] })
  const forgotten = await call(t, ONE, { method: 'DELETE', url: `/subjects/${subject}` })
  t.equal(forgotten.statusCode, 202)
  t.equal((await call(t, ONE, { method: 'DELETE', url: `/subjects/${subject}` })).json().events, 0)
  t.match((await call(t, ONE, { url: `/subjects/${subject}` })).json(), { forgotten: true, forgottenAt: forgotten.json().forgottenAt })
  t.match((await call(t, READ, { url: `/streams/${id}/events` })).json().events[0], { personalData: null, forgotten: true })
  const refused = await call(t, APPEND, { method: 'POST', url: `/streams/${id}/events`, payload: { events: [personalEvent(subject)] } })
  t.match(refused.json(), { code: 'subject-forgotten', status: 409 })
})

t.test('an unknown subject is 404 subject-not-found; bad ones are 400', async (t) => {
  t.match((await call(t, ONE, { url: `/subjects/${subjectId()}` })).json(), { code: 'subject-not-found', status: 404 })
  t.equal((await call(t, ONE, { url: '/subjects/not%20ok' })).statusCode, 400)
  t.equal((await call(t, ONE, { method: 'DELETE', url: '/subjects/not%20ok' })).statusCode, 400)
  t.equal((await call(t, ONE, { url: `/subjects/${subjectId()}`, headers: { 'x-tenant-id': 'Not A Tenant' } })).statusCode, 400)
})

t.test('a database failure is a generic 500', async (t) => {
  const callBroken = callOn(await buildBrokenApp(t, contract.doc))
  for (const res of [
    await callBroken(t, ONE, { url: '/subjects/customer-7' }),
    await callBroken(t, ONE, { method: 'DELETE', url: '/subjects/customer-7' }),
  ]) {
    t.equal(res.statusCode, 500)
    t.notMatch(res.body, LEAKS, 'no database details leak')
  }
})

t.test('every documented status of /subjects was produced', async (t) => {
  t.same(contract.unexercised((path) => path.startsWith('/subjects')), [])
})
