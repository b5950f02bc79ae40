import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { streamId } from '../helpers/fixtures.js'
import { SseClient } from '../helpers/sse-client.js'

// Issue 16, SPEC "Details": data and metadata come back exactly as sent through every read; nesting past
// 512 levels is a 400, never a 500; `__proto__` and `constructor` are ordinary keys.
const DATA = '{"big":12345678901234567890123,"huge":1e400,"tiny":1e-400,"dec":0.1000000000000000000000001,"edge":9007199254740993,"z":1,"a":[1.50,-0,2E+3],"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"x":1}}}'
const METADATA = '{"__proto__":9007199254740993,"correlationId":"c-1","n":1.0}'

const { app } = await buildTestApp(t)
const origin = await app.listen({ host: '127.0.0.1', port: 0 })
const appendText = (id: string, body: string) =>
  app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body, headers: { 'content-type': 'application/json' } })
const objectsDeep = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
const arraysDeep = (depth: number): string => `${'['.repeat(depth)}1${']'.repeat(depth)}`

t.test('numbers, key order and __proto__/constructor keys come back exactly through every read', async (t) => {
  const id = streamId()
  // spaces and line breaks between tokens may be normalised; nothing else may change
  const spaced = DATA.replace(/,/g, ' ,\n  ').replace(/:/g, ' : ')
  const res = await appendText(id, `{"events": [ {"type":"Exact", "data": ${spaced}, "metadata":${METADATA}} ]}`)
  t.equal(res.statusCode, 201, res.body)
  const exact = `"data":${DATA},"metadata":${METADATA}`
  const stream = await app.inject({ method: 'GET', url: `/streams/${id}/events` })
  t.ok(stream.body.includes(exact), `stream read: ${stream.body}`)
  const log = await app.inject({ method: 'GET', url: `/events?streamId=${id}` })
  t.ok(log.body.includes(exact), `log read: ${log.body}`)
  const load = await app.inject({ method: 'GET', url: `/streams/${id}/load` })
  t.ok(load.body.includes(exact), `load: ${load.body}`)
  const sse = await SseClient.open(origin, `/subscribe?streamId=${id}`)
  t.teardown(() => sse.close())
  await sse.waitForCount(1)
  t.ok(sse.messages[0]!.data.includes(exact), `subscribe, replayed: ${sse.messages[0]!.data}`)
  // a second event reaches the open subscription live, through the shared batch read
  t.equal((await appendText(id, `{"events":[{"type":"Exact","data":${DATA},"metadata":${METADATA}}]}`)).statusCode, 201)
  await sse.waitForCount(2)
  t.ok(sse.messages[1]!.data.includes(exact), `subscribe, live: ${sse.messages[1]!.data}`)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('integers beyond 2^53, numbers beyond double range and long decimals read back with their digits', async (t) => {
  const numbers = '{"big":12345678901234567890123,"huge":1e400,"tiny":1e-400,"dec":0.1000000000000000000000001,"edge":9007199254740993}'
  const id = streamId()
  t.equal((await appendText(id, `{"events":[{"type":"Numbers","data":${numbers}}]}`)).statusCode, 201)
  for (const url of [`/streams/${id}/events`, `/events?streamId=${id}`, `/streams/${id}/load`]) {
    const read = await app.inject({ method: 'GET', url })
    t.ok(read.body.includes(`"data":${numbers},`), `${url}: ${read.body}`)
  }
})

// sql/0027 takes an event's fields in one pass, and that pass writes a string anew: data that is a string is taken as sent.
// Appended side by side, so the first goes alone (append_events) and the rest together (append_events_batch).
t.test('data that is a bare string, number or literal reads back exactly, alone or batched', async (t) => {
  const values = ['"\\ud83d\\ude00 \\\\u0000"', '"a\\/b \\u00e9 \\"q\\""', '"plain"', '1.50', '-0', 'true', 'null', '["\\u00e9",{"\\u00e9":"\\/"}]']
  const appended = await Promise.all(values.map(async (value) => {
    const id = streamId()
    const res = await appendText(id, `{"events":[{"type":"Scalar","data":${value}}]}`)
    t.equal(res.statusCode, 201, res.body)
    return id
  }))
  for (const [index, id] of appended.entries()) {
    const read = await app.inject({ method: 'GET', url: `/streams/${id}/events` })
    t.ok(read.body.includes(`"data":${values[index]},`), `${values[index]}: ${read.body}`)
  }
})

t.test('a body with __proto__ or constructor keys in data is valid JSON and is appended', async (t) => {
  for (const data of ['{"__proto__":{"a":1}}', '{"constructor":{"prototype":{"a":1}}}', '[{"__proto__":null}]']) {
    const id = streamId()
    const res = await appendText(id, `{"events":[{"type":"Keys","data":${data}}]}`)
    t.equal(res.statusCode, 201, res.body)
    const read = await app.inject({ method: 'GET', url: `/streams/${id}/events` })
    t.ok(read.body.includes(`"data":${data},`), read.body)
  }
  // the envelope itself still allows no unknown field
  const envelope = await appendText(streamId(), '{"events":[{"type":"A","data":1}],"__proto__":{}}')
  t.equal(envelope.statusCode, 400)
  t.equal(envelope.json().code, 'validation-failed')
})

t.test('nesting: 512 levels of data are accepted, 513 and 10,000 levels are a 400', async (t) => {
  for (const deep of [objectsDeep, arraysDeep]) {
    const id = streamId()
    const ok = await appendText(id, `{"events":[{"type":"Deep","data":${deep(512)},"metadata":{"m":${deep(511)}}}]}`)
    t.equal(ok.statusCode, 201, ok.body.slice(0, 200))
    const read = await app.inject({ method: 'GET', url: `/streams/${id}/events` })
    t.ok(read.body.includes(`"data":${deep(512)},`))
    for (const depth of [513, 10_000]) {
      const res = await appendText(streamId(), `{"events":[{"type":"Deep","data":${deep(depth)}}]}`)
      t.equal(res.statusCode, 400, `${depth} levels`)
      t.equal(res.json().code, 'validation-failed')
    }
    const metadata = await appendText(streamId(), `{"events":[{"type":"Deep","data":1,"metadata":{"m":${deep(10_000)}}}]}`)
    t.equal(metadata.statusCode, 400)
  }
  const snapshot = await app.inject({ method: 'PUT', url: `/streams/${streamId()}/snapshots/1`, payload: `{"state":${arraysDeep(10_000)}}`, headers: { 'content-type': 'application/json' } })
  t.equal(snapshot.statusCode, 400)
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200)
})

t.test('NUL and unpaired surrogates are still refused', async (t) => {
  for (const data of ['"a\\u0000b"', '{"k\\ud800":1}', '["\\udc00"]']) {
    const res = await appendText(streamId(), `{"events":[{"type":"Bad","data":${data}}]}`)
    t.equal(res.statusCode, 400, data)
    t.equal(res.json().code, 'validation-failed')
  }
  const paired = await appendText(streamId(), '{"events":[{"type":"Ok","data":"\\ud83d\\ude00 \\\\u0000"}]}')
  t.equal(paired.statusCode, 201, paired.body)
})

t.test('an upcaster for the type leaves events it does not change exact; one it changes keeps every number the steps move or leave', async (t) => {
  const type = 'Versioned'
  const put = await app.inject({ method: 'PUT', url: `/upcasters/${type}`, payload: { steps: [{ from: 1, to: 2, rename: { old: 'renamed' } }] } })
  t.equal(put.statusCode, 201, put.body)
  const id = streamId()
  const current = `{"old":1,"big":12345678901234567890123}`
  const currentMetadata = '{"schemaVersion":2,"n":9007199254740993}'
  t.equal((await appendText(id, `{"events":[{"type":"${type}","data":${current},"metadata":${currentMetadata}}]}`)).statusCode, 201)
  const old = '{"old":1,"big":12345678901234567890123,"nested":{"x":0.1000000000000000000000001,"list":[1.0,-0]}}'
  t.equal((await appendText(id, `{"events":[{"type":"${type}","data":${old},"metadata":{"n":9007199254740993}}]}`)).statusCode, 201)
  const sse = await SseClient.open(origin, `/subscribe?streamId=${id}`)
  t.teardown(() => sse.close())
  await sse.waitForCount(2)
  const reads: [string, string][] = [['subscribe', sse.messages.map((message) => message.data).join('\n')]]
  for (const url of [`/streams/${id}/events`, `/events?streamId=${id}`]) reads.push([url, (await app.inject({ method: 'GET', url })).body])
  for (const [read, body] of reads) {
    t.ok(body.includes(`"data":${current},"metadata":${currentMetadata}`), `${read}: an event at the newest version comes back exactly: ${body}`)
    const upcast = '"data":{"big":12345678901234567890123,"nested":{"x":0.1000000000000000000000001,"list":[1.0,-0]},"renamed":1}'
    t.ok(body.includes(`${upcast},"metadata":{"n":9007199254740993,"schemaVersion":2}`), `${read}: an upcast event keeps its digits: ${body}`)
  }
})
