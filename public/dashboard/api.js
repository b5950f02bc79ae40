// Calling the API: every call carries the key and tenant typed in the header (`Authorization: Bearer …`,
// `X-Tenant-Id`), so streams are read with fetch() rather than EventSource, which cannot send headers.

export const credentials = {
  key: sessionStorage.getItem('annalist.key') ?? '',
  tenant: sessionStorage.getItem('annalist.tenant') ?? '',
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`)
    this.status = status
    this.problem = problem
  }
}

const requestHeaders = (accept) => {
  const headers = { accept }
  if (credentials.key) headers.authorization = `Bearer ${credentials.key}`
  if (credentials.tenant) headers['x-tenant-id'] = credentials.tenant
  return headers
}

const failure = async (response) => {
  let problem = null
  try {
    problem = await response.json()
  } catch {
    // not a problem document: the status says enough
  }
  return new ApiError(response.status, problem)
}

export const api = async (path, signal) => {
  const response = await fetch(path, { headers: requestHeaders('application/json'), cache: 'no-store', signal })
  if (!response.ok) throw await failure(response)
  return response.json()
}

// A management call: POST with a JSON body when there is one, none at all otherwise (the operations that
// take no body refuse one). Resolves to { status, body }; a refusal throws an ApiError with the problem.
export const post = async (path, body) => {
  const headers = requestHeaders('application/json')
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(path, { method: 'POST', headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) })
  if (!response.ok) throw await failure(response)
  return { status: response.status, body: await response.json() }
}

// Server-sent events over fetch: calls onMessage({id, event, data}) per message until the server ends the
// stream or `signal` aborts it.
export const readEventStream = async (path, { signal, lastEventId, onOpen, onMessage }) => {
  const headers = requestHeaders('text/event-stream')
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId)
  const response = await fetch(path, { headers, cache: 'no-store', signal })
  if (!response.ok) throw await failure(response)
  onOpen?.()
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const message = parseMessage(buffer.slice(0, end))
      buffer = buffer.slice(end + 2)
      if (message.data.length > 0) onMessage({ ...message, data: message.data.join('\n') })
    }
  }
}

const parseMessage = (block) => {
  const message = { id: undefined, event: 'message', data: [] }
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'data') message.data.push(text)
    else if (field === 'id') message.id = text
    else if (field === 'event') message.event = text
  }
  return message
}
