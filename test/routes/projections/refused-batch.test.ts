import t from 'tap'
import { buildTestApp } from '../../helpers/test-app.js'
import { waitFor } from '../../helpers/wait-for.js'

// A document the database refuses (jsonb holds no NUL character) fails the event that wrote it: the projection stops
// there with the event's position (SPEC "Projections"). When events the projection does not read lie between its
// checkpoint and that event, the failing batch held that one event alone; its tenant could only be held once the
// checkpoint stood right before the event, which the refused transaction never moved it to, so the worker gave up its
// checkpoint and tried again, forever (seen in CI as a projection that never reported its failure).
const dir = t.testdir({
  'refusing.ts': `
    export default {
      name: 'refusing',
      source: { categories: ['refusal'] },
      handlers: {
        Nul: async (event, ctx) => ctx.store(event.streamId, { text: 'a\\u0000b' }),
      },
    }`,
})
const { app } = await buildTestApp(t, { PROJECTIONS_DIR: dir })

t.test('a refused document fails its event when events the projection does not read came just before it', async (t) => {
  const appended = await app.inject({
    method: 'POST',
    url: '/appends',
    payload: {
      appends: [
        { streamId: 'elsewhere-1', events: [{ type: 'Other', data: {} }, { type: 'Other', data: {} }] },
        { streamId: 'refusal-1', events: [{ type: 'Nul', data: {} }] },
      ],
    },
  })
  t.equal(appended.statusCode, 201, 'both appends stored')
  const position = appended.json().appends[1].firstPosition as number
  const failed = await waitFor('refusing failed on the NUL document', async () => {
    const current = (await app.inject({ url: '/projections/refusing' })).json()
    return current.status === 'failed' && current
  })
  t.equal(failed.lastError.position, position, 'the failure names the refused event')
})
