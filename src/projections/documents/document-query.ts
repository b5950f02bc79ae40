import type postgres from 'postgres'
import type { Sql } from '../../db/connect.js'
import { Problem } from '../../problems.js'
import type { DocumentQuery, OrderKey, WhereClause } from '../schemas.js'
import type { Document } from '../types.js'

export type Fragment = postgres.PendingQuery<postgres.Row[]>

export const WHERE_OPS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'exists', 'prefix'] as const
export type WhereOp = (typeof WHERE_OPS)[number]
export type Direction = NonNullable<OrderKey['direction']>

// a dotted field path inside a document: non-empty segments, no NUL (`$.` is refused by checkPath)
export const PATH_PATTERN = '^[^.\\u0000]+(\\.[^.\\u0000]+)*$'
export const MAX_WHERE = 32
export const MAX_ORDER_BY = 8
export const MAX_IN_VALUES = 1000

// Where the last page ended: the orderBy it was made for, its sort keys as jsonb text (exact, even for
// numbers JS cannot hold) and its id, the final tiebreak.
interface Cursor {
  o: [string, Direction][]
  k: string
  i: string
}

const invalid = (detail: string): Problem => new Problem('validation-failed', {}, detail)

// Document paths are fields, not the `$.` event paths of definitions (SPEC "Documents").
export const checkPath = (path: string, where: string): string[] => {
  if (path.startsWith('$.')) throw invalid(`${where} is a document field such as total or address.city, without the $. prefix`)
  if (!new RegExp(PATH_PATTERN, 'u').test(path)) throw invalid(`${where} must be dotted field names, none empty`)
  return path.split('.')
}

// Every value reaches SQL as a bound parameter. Missing fields read as JSON null, so sorting and keyset
// comparisons never meet SQL NULL.
const field = (sql: Sql, path: string[]): Fragment => sql`coalesce(document #> ${path}::text[], 'null'::jsonb)`
// wrapped in an array: postgres.js would bind a bare null as SQL NULL, not as the JSON null
const jsonb = (sql: Sql, value: unknown): Fragment => sql`(${sql.json([value] as never)}::jsonb -> 0)`

const checkValue = (clause: WhereClause, where: string): void => {
  if (clause.op === 'in' && (!Array.isArray(clause.value) || clause.value.length > MAX_IN_VALUES)) {
    throw invalid(`${where}.value of in must be an array of at most ${MAX_IN_VALUES} values`)
  }
  if (clause.op === 'exists' && typeof clause.value !== 'boolean') throw invalid(`${where}.value of exists must be true or false`)
  if (clause.op === 'prefix' && typeof clause.value !== 'string') throw invalid(`${where}.value of prefix must be a string`)
}

const condition = (sql: Sql, clause: WhereClause, index: number): Fragment => {
  const where = `where[${index}]`
  const path = checkPath(clause.path, `${where}.path`)
  checkValue(clause, where)
  const key = field(sql, path)
  const value = jsonb(sql, clause.value)
  // comparisons stay within one JSON type (numbers numerically, strings as text), as users of document
  // stores expect: `total lt 5` matches neither a missing total nor a string
  const sameType = sql`jsonb_typeof(${key}) = jsonb_typeof(${value})`
  switch (clause.op) {
    case 'eq':
      return sql`${key} = ${value}`
    case 'ne':
      return sql`${key} <> ${value}`
    case 'gt':
      return sql`(${sameType} and ${key} > ${value})`
    case 'gte':
      return sql`(${sameType} and ${key} >= ${value})`
    case 'lt':
      return sql`(${sameType} and ${key} < ${value})`
    case 'lte':
      return sql`(${sameType} and ${key} <= ${value})`
    case 'in':
      return sql`${key} in (select jsonb_array_elements(${sql.json(clause.value as never)}::jsonb))`
    case 'exists':
      return clause.value ? sql`document #> ${path}::text[] is not null` : sql`document #> ${path}::text[] is null`
    case 'prefix':
      return sql`(jsonb_typeof(${key}) = 'string' and starts_with(document #>> ${path}::text[], ${clause.value as string}::text))`
  }
}

// `document @> $1` keeps the shape projection_documents_document_idx (jsonb_path_ops) serves.
export const conditions = (sql: Sql, query: DocumentQuery): Fragment => {
  const parts = [
    ...(query.filter === undefined ? [] : [sql`and document @> ${sql.json(query.filter as never)}::jsonb`]),
    ...(query.where ?? []).map((clause, index) => sql`and ${condition(sql, clause, index)}`),
  ]
  // postgres.js takes an empty array for a parameter, not for an empty fragment list
  return parts.length === 0 ? sql`` : sql`${parts}`
}

export interface SortKey {
  path: string[]
  direction: Direction
}

export const sortKeys = (orderBy: OrderKey[] = []): SortKey[] => {
  if (orderBy.length > MAX_ORDER_BY) throw invalid(`orderBy takes at most ${MAX_ORDER_BY} keys`)
  return orderBy.map((key, index) => ({ path: checkPath(key.path, `orderBy[${index}].path`), direction: key.direction ?? 'asc' }))
}

const ordered = (sql: Sql, key: SortKey): Fragment =>
  key.direction === 'desc' ? sql`${field(sql, key.path)} desc` : sql`${field(sql, key.path)} asc`

// the orderBy keys, then id ascending: a total order, so keyset paging neither repeats nor skips
export const orderClause = (sql: Sql, keys: SortKey[]): Fragment[] => [
  ...keys.map((key, index) => (index === 0 ? sql`order by ${ordered(sql, key)}` : sql`, ${ordered(sql, key)}`)),
  keys.length === 0 ? sql`order by id` : sql`, id`,
]

// the sort keys of a row as jsonb text, for the cursor of the page it ends
export const sortKeysText = (sql: Sql, keys: SortKey[]): Fragment =>
  keys.length === 0 ? sql`'[]'` : sql`jsonb_build_array(${keys.map((key, index) => (index === 0 ? field(sql, key.path) : sql`, ${field(sql, key.path)}`))})::text`

// Rows strictly after the cursor in the page order: (k1 after c1) or (k1 = c1 and (k2 after c2 or …
// (id > cursor id))), with "after" meaning > for asc keys and < for desc ones.
export const afterCursor = (sql: Sql, keys: SortKey[], cursor: Pick<Cursor, 'k' | 'i'>): Fragment => {
  let after = sql`id > ${cursor.i}`
  for (let index = keys.length - 1; index >= 0; index -= 1) {
    const key = field(sql, keys[index]!.path)
    const value = sql`(${cursor.k}::text::jsonb -> ${index}::int)`
    const beyond = keys[index]!.direction === 'desc' ? sql`${key} < ${value}` : sql`${key} > ${value}`
    after = sql`(${beyond} or (${key} = ${value} and ${after}))`
  }
  return sql`and ${after}`
}

const signature = (keys: SortKey[]): [string, Direction][] => keys.map((key) => [key.path.join('.'), key.direction])

export const encodeCursor = (keys: SortKey[], sortKeys: string, id: string): string =>
  Buffer.from(JSON.stringify({ o: signature(keys), k: sortKeys, i: id } satisfies Cursor)).toString('base64url')

const BASE64URL = /^[A-Za-z0-9_-]+$/

export const decodeCursor = (text: string, keys: SortKey[]): Cursor => {
  let cursor: Partial<Cursor> | null = null
  try {
    if (BASE64URL.test(text)) cursor = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Cursor>
  } catch {
    cursor = null
  }
  const values = typeof cursor?.k === 'string' ? parseJson(cursor.k) : undefined
  if (typeof cursor?.i !== 'string' || !Array.isArray(values) || values.length !== keys.length || cursor.i.includes('\u0000')) {
    throw invalid('cursor is not a cursor this endpoint returned')
  }
  if (JSON.stringify(cursor.o) !== JSON.stringify(signature(keys))) throw invalid('cursor was made for another orderBy; pass the same orderBy on every page')
  return cursor as Cursor
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

// The simple form (GET …/documents): `filter` is JSON text, `orderBy` is `path[:asc|desc],…`.
export const parseFilter = (text: string | undefined): Document | undefined => {
  if (text === undefined) return undefined
  const filter = parseJson(text)
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) throw invalid('filter must be a JSON object')
  return filter as Document
}

export const parseOrderBy = (text: string | undefined): OrderKey[] | undefined =>
  text?.split(',').map((entry) => {
    const match = /^(.*):(asc|desc)$/.exec(entry)
    return match ? { path: match[1]!, direction: match[2] as Direction } : { path: entry }
  })
