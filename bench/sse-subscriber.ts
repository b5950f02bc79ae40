import { Client } from 'undici'

const ID_LINE = /(?:^|\n)id: (\d+)\n/g

// One SSE connection that only looks for `id:` lines, so 100 of them cost the bench little; `onId` gets each
// position with the time its chunk arrived, `onEndedByServer` a stream the server ended before the bench closed it
// (a subscriber that does not reconnect misses the rest).
export const openSubscriber = async (
  origin: string,
  path: string,
  onId: (position: number, at: number) => void,
  onEndedByServer: () => void = () => undefined,
): Promise<() => Promise<void>> => {
  const client = new Client(origin, { bodyTimeout: 0, pipelining: 0 })
  const response = await client.request({ method: 'GET', path, headers: { accept: 'text/event-stream' } })
  if (response.statusCode !== 200) throw new Error(`bench: GET ${path} answered ${response.statusCode}`)
  let tail = ''
  response.body.setEncoding('latin1')
  response.body.on('data', (chunk: string) => {
    const at = performance.now()
    const text = tail + chunk
    const cut = text.lastIndexOf('\n\n')
    if (cut < 0) {
      tail = text
      return
    }
    tail = text.slice(cut + 2)
    for (const match of text.slice(0, cut + 2).matchAll(ID_LINE)) onId(Number(match[1]), at)
  })
  let closing = false
  response.body.on('error', () => undefined)
  response.body.on('end', () => void (closing || onEndedByServer()))
  return async () => {
    closing = true
    response.body.destroy()
    await client.destroy().catch(() => undefined)
  }
}
