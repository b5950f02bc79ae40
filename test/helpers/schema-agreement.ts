// Compares two JSON Schemas of one body, a route's TypeBox schema and openapi.yaml's, as a client sees a body:
// the fields of every object (which are named, which are required, whether others may come), the JSON types
// and enumerated values of every field, and array items, all the way down. Keywords that only narrow a value
// (patterns, lengths, bounds, formats) are not compared. The answer is one line per disagreement.

type Json = Record<string, any>

// A schema's $ref, resolved in the document it comes from (openapi.yaml, or the app's shared schemas).
export type Resolve = (ref: string) => Json | undefined

export interface Side {
  schema: Json
  resolve: Resolve
}

const deref = (schema: Json, resolve: Resolve): Json => {
  let node = schema
  for (let hops = 0; typeof node.$ref === 'string'; hops++) {
    const target = resolve(node.$ref)
    if (!target || hops > 16) throw new Error(`unresolvable $ref ${node.$ref}`)
    node = target
  }
  return node
}

// The alternatives a value may take: unions spread, allOf parts merged into one object (their if/then parts
// only narrow values).
const variants = (schema: Json, resolve: Resolve): Json[] => {
  const node = deref(schema, resolve)
  const union = node.anyOf ?? node.oneOf
  if (Array.isArray(union)) return union.flatMap((member: Json) => variants(member, resolve))
  if (!Array.isArray(node.allOf)) return [node]
  const parts = [node, ...node.allOf.map((part: Json) => deref(part, resolve))]
  return [{
    ...node,
    allOf: undefined,
    properties: Object.assign({}, ...parts.map((part) => part.properties ?? {})),
    required: parts.flatMap((part) => part.required ?? []),
  }]
}

const jsonType = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value

// The JSON types a variant allows; undefined when it says nothing about its values (any JSON).
const typesOf = (node: Json): string[] | undefined => {
  if (node.type !== undefined) return [node.type].flat()
  if (node.const !== undefined) return [jsonType(node.const)]
  if (Array.isArray(node.enum)) return node.enum.map(jsonType)
  if (node.properties || node.patternProperties || node.additionalProperties !== undefined) return ['object']
  if (node.items) return ['array']
  return undefined
}

const valuesOf = (node: Json): unknown[] | undefined =>
  node.const !== undefined ? [node.const] : Array.isArray(node.enum) ? node.enum : undefined

// Whether an object may hold fields it does not name. An object schema that names none and says nothing of the
// others is open: openapi.yaml's `{type: object}` documents any object, and the tests validate it so.
const isOpen = (node: Json): boolean =>
  Boolean(node.additionalProperties) || node.patternProperties !== undefined || (node.properties === undefined && node.additionalProperties === undefined)

interface Shape {
  any: boolean
  types: Set<string>
  values: Set<string> | undefined
  objects: Json[]
  items: Json[]
}

const shapeOf = ({ schema, resolve }: Side): Shape => {
  const all = variants(schema, resolve)
  const types = all.map(typesOf)
  const values = all.map(valuesOf)
  return {
    any: types.some((list) => list === undefined),
    types: new Set(types.flatMap((list) => list ?? [])),
    values: values.every((list) => list !== undefined) ? new Set(values.flat().map((value) => JSON.stringify(value))) : undefined,
    objects: all.filter((node) => typesOf(node)?.includes('object')),
    items: all.filter((node) => typesOf(node)?.includes('array') && node.items).map((node) => node.items as Json),
  }
}

const sorted = (set: Set<string>): string => [...set].sort().join(', ')
const union = (schemas: Json[]): Json => (schemas.length === 1 ? schemas[0]! : { anyOf: schemas })

interface Fields {
  named: Map<string, Json[]>
  required: Set<string>
  open: boolean
}

// The fields of every object variant together; a field is required when every variant naming it requires it.
const fieldsOf = (objects: Json[]): Fields => {
  const named = new Map<string, Json[]>()
  const optional = new Set<string>()
  for (const node of objects) {
    for (const [name, schema] of Object.entries<Json>(node.properties ?? {})) {
      named.set(name, [...(named.get(name) ?? []), schema])
      if (!(node.required ?? []).includes(name)) optional.add(name)
    }
  }
  return { named, required: new Set([...named.keys()].filter((name) => !optional.has(name))), open: objects.some(isOpen) }
}

const compareObjects = (route: Side & { objects: Json[] }, doc: Side & { objects: Json[] }, at: string, out: string[]): void => {
  const mine = fieldsOf(route.objects)
  const theirs = fieldsOf(doc.objects)
  for (const name of mine.named.keys()) {
    if (!theirs.named.has(name) && !theirs.open) out.push(`${at}.${name}: the route's schema has it, openapi.yaml does not`)
  }
  for (const name of theirs.named.keys()) {
    if (!mine.named.has(name) && !mine.open) out.push(`${at}.${name}: openapi.yaml has it, the route's schema does not`)
  }
  for (const [name, schemas] of mine.named) {
    const documented = theirs.named.get(name)
    if (!documented) continue
    if (mine.required.has(name) !== theirs.required.has(name)) {
      out.push(`${at}.${name}: ${mine.required.has(name) ? 'required' : 'optional'} in the route's schema, ${theirs.required.has(name) ? 'required' : 'optional'} in openapi.yaml`)
    }
    compare({ schema: union(schemas), resolve: route.resolve }, { schema: union(documented), resolve: doc.resolve }, `${at}.${name}`, out)
  }
}

// Every way `route` and `doc` describe the value at `at` differently, appended to `out`.
export const compare = (route: Side, doc: Side, at: string, out: string[] = []): string[] => {
  const mine = shapeOf(route)
  const theirs = shapeOf(doc)
  if (mine.any || theirs.any) return out
  if (sorted(mine.types) !== sorted(theirs.types)) {
    out.push(`${at}: the route's schema allows ${sorted(mine.types)}, openapi.yaml ${sorted(theirs.types)}`)
    return out
  }
  if (mine.values && theirs.values && sorted(mine.values) !== sorted(theirs.values)) {
    out.push(`${at}: the route's schema allows ${sorted(mine.values)}, openapi.yaml ${sorted(theirs.values)}`)
  }
  if (mine.objects.length > 0) compareObjects({ ...route, objects: mine.objects }, { ...doc, objects: theirs.objects }, at, out)
  if (mine.items.length > 0 && theirs.items.length > 0) {
    compare({ schema: union(mine.items), resolve: route.resolve }, { schema: union(theirs.items), resolve: doc.resolve }, `${at}[]`, out)
  }
  return out
}
