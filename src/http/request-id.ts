import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

// Echo a caller's id so its logs and ours join up, but only one that is safe to log and send back.
export const requestId = (request: IncomingMessage): string => {
  const incoming = request.headers['x-request-id']
  return typeof incoming === 'string' && VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID()
}
