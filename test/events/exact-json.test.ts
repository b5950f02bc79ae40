import t from 'tap'
import { inexactNumbers, JsonNumber, parseExact, stringifyExact } from '../../src/events/exact-json.js'

// what inexactNumbers must find: every number whose text a double does not give back
const inexact = (number: string): boolean => String(Number(number)) !== number

// a deterministic stream of numbers in every form JSON allows, weighted to the edges of the shortcut
let seed = 12345
const random = (below: number): number => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return (seed >>> 8) % below
}
const digits = (count: number, first = '123456789'): string => {
  let text = first[random(first.length)]!
  for (let index = 1; index < count; index++) text += String(random(10))
  return text
}
const numberText = (): string => {
  const sign = random(3) === 0 ? '-' : ''
  const long = random(4) === 0
  const integer = random(4) === 0 ? '0' : digits(1 + random(long ? 18 : 9))
  const fraction = random(3) === 0 ? '' : `.${random(3) === 0 ? '0'.repeat(random(9)) : ''}${digits(1 + random(long ? 17 : 7), '0123456789')}`
  const exponent = random(8) === 0 ? `e${random(2) ? '-' : ''}${random(400)}` : ''
  return sign + integer + fraction + exponent
}

t.test('inexactNumbers finds exactly the numbers a double would change, and only outside strings', async (t) => {
  const edges = ['0', '-0', '0.0', '-0.0', '1.0', '1.50', '0.000001', '0.0000001', '0.0000012', '123456789012345', '1234567890123456', '9007199254740993',
    '12345678901234.5', '1234567890123.45', '0.1', '0.30000000000000004', '189.48', '-149.5', '1e400', '1E2', '1e-400', '100', '-7', '5e-324']
  const numbers = [...edges, ...Array.from({ length: 20_000 }, numberText)]
  let found = 0
  for (const number of numbers) {
    const text = `{"n":${number},"s":"${number}","a":[${number}, ${number}]}`
    const spans = inexactNumbers(text).map(([start, end]) => text.slice(start, end))
    const expected = inexact(number) ? [number, number, number] : []
    if (JSON.stringify(spans) !== JSON.stringify(expected)) t.fail(`${number}: found ${JSON.stringify(spans)}`)
    if (expected.length) found++
  }
  t.ok(found > 1000 && found < numbers.length - 1000, `both kinds are covered (${found} of ${numbers.length} inexact)`)
})

t.test('parseExact keeps the numbers a double cannot, as their text; stringifyExact writes them back', async (t) => {
  const text = '{"id":9007199254740993,"price":19.99,"big":1e400,"one":1.0,"minus":-0,"s":"9007199254740993 \\" 1.0","list":[0.0000001,2]}'
  const value = parseExact(text) as Record<string, unknown>
  t.same(value.id, new JsonNumber('9007199254740993'))
  t.equal(value.price, 19.99)
  t.same(value.big, new JsonNumber('1e400'))
  t.same(value.one, new JsonNumber('1.0'))
  t.same(value.minus, new JsonNumber('-0'))
  t.equal(value.s, '9007199254740993 " 1.0')
  t.same(value.list, [new JsonNumber('0.0000001'), 2])
  t.equal(stringifyExact(value), text)
})
