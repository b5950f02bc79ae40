import type { FastifyInstance } from 'fastify'
import type { SseEvent } from './sse-client.js'

// a stored event as every read returns it, with its lease
export type Delivered = SseEvent & { delivery: { attempt: number; deadline: string } }

// The consumer-group routes through inject, for one tenant (and key, when given).
export const groupApi = (app: FastifyInstance, headers: Record<string, string> = {}) => {
  const call = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) })
  return {
    call,
    put: (name: string, body: object = {}) => call('PUT', `/consumer-groups/${name}`, body),
    status: async (name: string) => (await call('GET', `/consumer-groups/${name}`)).json(),
    poll: async (name: string, query = ''): Promise<Delivered[]> => {
      const response = await call('POST', `/consumer-groups/${name}/poll${query}`)
      if (response.statusCode !== 200) throw new Error(`poll ${response.statusCode} ${response.body}`)
      return response.json().events
    },
    ack: async (name: string, eventIds: string[]) => (await call('POST', `/consumer-groups/${name}/ack`, { eventIds })).json(),
    nack: async (name: string, body: object) => (await call('POST', `/consumer-groups/${name}/nack`, body)).json(),
    append: (streamId: string, count: number, type = 'Ticked') =>
      call('POST', `/streams/${streamId}/events`, { events: Array.from({ length: count }, (_, index) => ({ type, data: { index } })) }),
  }
}
