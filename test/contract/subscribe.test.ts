import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { events, streamId } from '../helpers/fixtures.js'
import { buildBrokenApp, LEAKS } from '../helpers/broken-app.js'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildTestApp } from '../helpers/test-app.js'

// GET /subscribe, checked against openapi.yaml. The stream itself is tested over a socket in test/e2e/subscribe.test.ts.
const contract = await OpenapiContract.load()
const { app, services } = await buildTestApp(t)
const PATH = '/subscribe'

const callOn = (target: FastifyInstance) => async (t: Test, options: InjectOptions & { url: string }) => {
  const res = await target.inject(options)
  contract.check(t, 'GET', PATH, res)
  return res
}
const call = callOn(app)

t.test('200 is an event stream with the documented headers, starting with the replay', async (t) => {
  const id = streamId()
  const { firstPosition } = (await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: { events: events(1, 'Subscribed') } })).json()
  await services.logWatcher.waitFor(firstPosition, 5000)
  const res = await app.inject({ url: `${PATH}?streamId=${id}`, headers: { accept: 'text/event-stream' }, payloadAsStream: true })
  contract.check(t, 'GET', PATH, { statusCode: res.statusCode, headers: res.headers, body: '' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-cache')
  let text = ''
  for await (const chunk of res.stream()) {
    text += String(chunk)
    if (text.includes('\n\n')) break
  }
  t.match(text, new RegExp(`^id: ${firstPosition}\nevent: Subscribed\ndata: \\{"globalPosition":${firstPosition},`))
  services.liveFeed.closeAll()
})

t.test('a wrong Accept is 406; bad filters and Last-Event-ID are 400', async (t) => {
  t.match((await call(t, { url: PATH, headers: { accept: 'application/json' } })).json(), { code: 'not-acceptable' })
  t.equal((await call(t, { url: `${PATH}?after=x` })).statusCode, 400)
  t.equal((await call(t, { url: PATH, headers: { 'last-event-id': '-1' } })).statusCode, 400)
})

t.test('a database failure before the stream starts is a generic 500', async (t) => {
  const callBroken = callOn(await buildBrokenApp(t, contract.doc))
  const res = await callBroken(t, { url: `${PATH}?after=0` })
  t.equal(res.statusCode, 500)
  t.notMatch(res.body, LEAKS, 'no database details leak')
})

t.test('every documented status of /subscribe was produced', async (t) => {
  t.same(contract.unexercised((path) => path === PATH), [])
})
