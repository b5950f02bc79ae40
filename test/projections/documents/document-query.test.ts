import t from 'tap'
import { checkPath, decodeCursor, encodeCursor, parseFilter, parseOrderBy, sortKeys } from '../../../src/projections/documents/document-query.js'
import { Problem } from '../../../src/problems.js'

const problem = (fn: () => unknown): string | undefined => {
  try {
    fn()
    return undefined
  } catch (error) {
    return error instanceof Problem ? `${error.code}: ${error.detail}` : `not a problem: ${String(error)}`
  }
}

t.test('the simple orderBy form is path[:asc|desc], comma separated', async (t) => {
  t.same(parseOrderBy('total:desc,address.city,name:asc'), [{ path: 'total', direction: 'desc' }, { path: 'address.city' }, { path: 'name', direction: 'asc' }])
  t.same(parseOrderBy('a:b'), [{ path: 'a:b' }], 'a colon not followed by a direction is part of the path')
  t.same(parseOrderBy('a:b:desc'), [{ path: 'a:b', direction: 'desc' }])
  t.equal(parseOrderBy(undefined), undefined)
  t.match(problem(() => sortKeys(parseOrderBy('total,'))), /^validation-failed/, 'an empty key is refused')
  t.match(problem(() => sortKeys(parseOrderBy('$.total'))), /^validation-failed: orderBy\[0\]\.path .*\$\. prefix/)
  t.match(problem(() => sortKeys(parseOrderBy('a,b,c,d,e,f,g,h,i'))), /at most 8/)
})

t.test('the simple filter form is a JSON object', async (t) => {
  t.same(parseFilter('{"status":"placed","address":{"city":"bern"}}'), { status: 'placed', address: { city: 'bern' } })
  t.equal(parseFilter(undefined), undefined)
  for (const text of ['{nope', '[1]', 'null', '"x"', '5', '']) t.match(problem(() => parseFilter(text)), /^validation-failed/, text)
})

t.test('paths are dotted document fields, never $. event paths', async (t) => {
  t.same(checkPath('address.city', 'p'), ['address', 'city'])
  t.same(checkPath('$x', 'p'), ['$x'])
  for (const path of ['$.total', 'a..b', '.a', 'a.', '', 'a\u0000b']) t.match(problem(() => checkPath(path, 'p')), /^validation-failed/, JSON.stringify(path))
})

t.test('a cursor round-trips for its own orderBy only', async (t) => {
  const keys = sortKeys([{ path: 'total', direction: 'desc' }, { path: 'name' }])
  const cursor = encodeCursor(keys, '[12345678901234567890, "bob"]', 'order-1')
  t.match(cursor, /^[A-Za-z0-9_-]+$/, 'base64url')
  t.same(decodeCursor(cursor, keys), { o: [['total', 'desc'], ['name', 'asc']], k: '[12345678901234567890, "bob"]', i: 'order-1' }, 'sort keys stay exact jsonb text')
  t.match(problem(() => decodeCursor(cursor, sortKeys([{ path: 'total' }, { path: 'name' }]))), /another orderBy/)
  t.match(problem(() => decodeCursor(cursor, sortKeys([]))), /^validation-failed/)
  const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  for (const text of ['', '!!!', 'e30', forged({ o: [], k: '[]' }), forged({ o: [], k: '[1]', i: 'x' }), forged({ o: [], k: 'nope', i: 'x' }), forged({ o: [], k: '[]', i: 'a\u0000' })]) {
    t.match(problem(() => decodeCursor(text, [])), /^validation-failed/, text)
  }
  t.same(decodeCursor(forged({ o: [], k: '[]', i: 'x' }), []), { o: [], k: '[]', i: 'x' })
})
