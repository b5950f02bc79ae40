import t from 'tap'
import { eventJsonText, MAX_JSON_DEPTH, parseAppendBody, parseAppendsBody, parseJsonBody } from '../../src/http/json-body.js'
import { Problem } from '../../src/problems.js'

const nested = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels)
const eventsOf = (body: unknown): object[] => (body as { events: object[] }).events

t.test('an append body keeps each event’s data and metadata text as sent, whitespace between tokens removed', async (t) => {
  const body = parseAppendBody('{ "events" : [ {"type":"A", "data" : { "n" : 1.50 , "s" : " a  b " } , "metadata":{"k":[ 1 ,2 ]}}, {"type":"B","data":7} ] }')
  const [first, second] = eventsOf(body)
  t.same(eventJsonText(first!), { data: '{"n":1.50,"s":" a  b "}', metadata: '{"k":[1,2]}' })
  t.same(eventJsonText(second!), { data: '7' })
})

t.test('the events JSON.parse keeps are the ones captured: the last `events`, however its name is spelled', async (t) => {
  const body = parseAppendBody('{"events":[{"type":"A","data":1}],"ev\\u0065nts":[{"type":"B","data":{"x":"\\\\"}}]}')
  const [only] = eventsOf(body)
  t.same(eventJsonText(only!), { data: '{"x":"\\\\"}' })
  t.equal(eventJsonText({}), undefined, 'an object the parser did not make has no sent text')
})

t.test('values outside events[i].data and events[i].metadata are not captured', async (t) => {
  const body = parseAppendBody('{"data":1,"events":[{"type":"A","data":{"data":2},"extra":{"metadata":3}}],"metadata":4}')
  t.same(eventJsonText(eventsOf(body)[0]!), { data: '{"data":2}' })
  t.equal(eventJsonText(parseJsonBody('{"events":[{"data":1}]}') as object), undefined, 'a plain body captures nothing')
})

t.test('nesting past the limit is refused before parsing; an append allows its three envelope levels on top', async (t) => {
  t.type(parseJsonBody(nested(MAX_JSON_DEPTH)), Array)
  t.throws(() => parseJsonBody(nested(MAX_JSON_DEPTH + 1)), new Problem('validation-failed', { maxDepth: MAX_JSON_DEPTH }, `the body nests deeper than ${MAX_JSON_DEPTH} levels`))
  t.ok(parseAppendBody(`{"events":[{"type":"A","data":${nested(MAX_JSON_DEPTH)}}]}`))
  t.throws(() => parseAppendBody(`{"events":[{"type":"A","data":${nested(MAX_JSON_DEPTH + 1)}}]}`), { code: 'validation-failed', extra: { maxDepth: MAX_JSON_DEPTH } })
})

t.test('text that is not JSON is a validation-failed problem', async (t) => {
  for (const text of ['{"a":"unterminated', '{"events":[', '', 'nul']) {
    t.throws(() => parseAppendBody(text), { code: 'validation-failed', message: 'the body is not valid JSON' }, JSON.stringify(text))
  }
})

const entriesOf = (body: unknown): object[][] => (body as { appends: { events: object[] }[] }).appends.map((entry) => entry.events)

t.test('a POST /appends body keeps the text of every entry\'s events as sent', async (t) => {
  const body = parseAppendsBody('{"appends":[{"streamId":"a","events":[{"type":"A","data" : [ 1.50 ]},{"type":"B","data":2,"metadata":{ "k" : 1e400 }}]},{"events":[{"type":"C","data":{"x":12345678901234567890123}}],"streamId":"b"}]}')
  const [[first, second], [third]] = entriesOf(body)
  t.same(eventJsonText(first!), { data: '[1.50]' })
  t.same(eventJsonText(second!), { data: '2', metadata: '{"k":1e400}' })
  t.same(eventJsonText(third!), { data: '{"x":12345678901234567890123}' })
})

t.test('in a POST /appends body a repeated `events` or `appends` keeps only what JSON.parse keeps', async (t) => {
  const body = parseAppendsBody('{"appends":[{"events":[{"type":"A","data":1,"metadata":{"stale":1}}],"streamId":"a","events":[{"type":"B","data":2}]},{"streamId":"b","events":[{"type":"C","data":3}]}]}')
  const [[only], [other]] = entriesOf(body)
  t.same(eventJsonText(only!), { data: '2' }, 'no metadata text from the events array JSON.parse dropped')
  t.same(eventJsonText(other!), { data: '3' }, 'the other entry keeps its own')
  const again = parseAppendsBody('{"appends":[{"streamId":"a","events":[{"type":"A","data":1,"metadata":{"m":1}}]}],"appends":[{"streamId":"a","events":[{"type":"B","data":2}]}]}')
  t.same(eventJsonText(entriesOf(again)[0]![0]!), { data: '2' })
})

t.test('in a POST /appends body nothing outside appends[j].events[i] is captured, and nesting counts from the data', async (t) => {
  const body = parseAppendsBody('{"events":[{"type":"A","data":1}],"appends":[{"streamId":"a","data":{"events":[]},"events":[{"type":"A","extra":{"data":5},"data":{"metadata":2}}]}]}')
  t.same(eventJsonText(entriesOf(body)[0]![0]!), { data: '{"metadata":2}' })
  t.equal(eventJsonText((body as { events: object[] }).events[0]!), undefined, 'a root events array is not an append body here')
  const nested = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels)
  t.ok(parseAppendsBody(`{"appends":[{"streamId":"a","events":[{"type":"A","data":${nested(MAX_JSON_DEPTH)}}]}]}`))
  t.throws(() => parseAppendsBody(`{"appends":[{"streamId":"a","events":[{"type":"A","data":${nested(MAX_JSON_DEPTH + 1)}}]}]}`), { code: 'validation-failed', extra: { maxDepth: MAX_JSON_DEPTH } })
})
