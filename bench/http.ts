import type { Dispatcher } from 'undici'

export interface JsonResponse<T> {
  status: number
  json: T
}

const JSON_HEADERS = { 'content-type': 'application/json' }

export const postJson = async <T = unknown>(dispatcher: Dispatcher, path: string, body: string): Promise<JsonResponse<T>> => {
  const response = await dispatcher.request({ path, method: 'POST', headers: JSON_HEADERS, body })
  return { status: response.statusCode, json: (await response.body.json()) as T }
}

// For the hot loop when the answer is not needed: read and discard it, keep the connection.
export const postDiscard = async (dispatcher: Dispatcher, path: string, body: string): Promise<number> => {
  const response = await dispatcher.request({ path, method: 'POST', headers: JSON_HEADERS, body })
  await response.body.dump()
  return response.statusCode
}

export const expectStatus = (what: string, status: number, wanted: number, json: unknown): void => {
  if (status !== wanted) throw new Error(`bench: ${what} answered ${status}, expected ${wanted}: ${JSON.stringify(json).slice(0, 300)}`)
}
