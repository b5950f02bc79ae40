import type { FastifyInstance } from 'fastify'
import { waitFor } from './wait-for.js'

// A projection as a client of the HTTP API sees it.

// GET /projections/{name} until it is running with lag 0; returns that view.
export const caughtUp = (app: FastifyInstance, name: string, timeoutMs = 60_000): Promise<any> =>
  waitFor(`${name} caught up`, async () => {
    const view = (await app.inject({ url: `/projections/${name}` })).json()
    return view.status === 'running' && view.lag === 0 && view
  }, { timeoutMs })

// The events of its system stream `$projection-{name}` (none before it has one), of one type when given.
export const systemEvents = async (app: FastifyInstance, name: string, type?: string): Promise<any[]> => {
  const res = await app.inject({ url: `/streams/$projection-${name}/events?limit=1000` })
  if (res.statusCode === 404) return []
  const events = res.json().events as { type: string }[]
  return type === undefined ? events : events.filter((event) => event.type === type)
}
