import fc from 'fast-check'

type Json = Record<string, any>

// Values no schema would produce, of the kinds attackers send: SQL fragments, path tricks, NUL bytes and
// lone surrogates, odd unicode, very long strings, numbers at and past every limit.
export const HOSTILE_STRINGS = [
  '', ' ', "'", "' OR '1'='1", "'; drop table events; --", '"; select pg_sleep(10); --', '1; delete from streams', '\\', '%', '_', '*',
  '\u0000', 'a\u0000b', '\ud800', 'x\udfffy', '\u202e', '\ufeff', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '😀'.repeat(64), 'é'.normalize('NFD'),
  '$', '$$', '$.', '$.data', '$[*]', '..', '../../etc/passwd', '%00', '%2e%2e%2f', '<script>alert(1)</script>', '${7*7}', '{{7*7}}',
  '__proto__', 'constructor', 'null', 'true', '-1', '1e309', 'NaN', 'a'.repeat(257), 'b'.repeat(70_000),
]
export const HOSTILE_NUMBERS = [-1, 0, 1, -0, 0.5, 1e308, -1e308, 2 ** 31, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e21]

export const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
)

const nested = (depth: number): unknown => {
  let value: unknown = 'deep'
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value }
  return value
}

// Any JSON, weighted toward the nasty: deep nesting, big numbers, hostile strings as keys and values.
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_NUMBERS) },
  { weight: 1, arbitrary: fc.constantFrom(nested(64), nested(1000), null, [], {}) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 4 }) },
)

const boundaryIntegers = (schema: Json): number[] => {
  const values = [0, 1, -1]
  for (const bound of [schema.minimum, schema.maximum]) if (typeof bound === 'number') values.push(bound - 1, bound, bound + 1)
  return values
}

// An arbitrary for values of an openapi.yaml schema: mostly valid (so requests get past validation and
// reach the store), with boundary values, and at every node some chance of a hostile value instead.
export class SchemaArbitraries {
  constructor(
    private readonly doc: Json,
    // a value for a named property or parameter, where the schema alone makes poor requests
    private readonly overrides: Record<string, fc.Arbitrary<unknown>> = {},
    // the odds (against 8) that a node is hostile instead of valid; 0 generates valid values only
    private readonly hostileWeight = 1,
  ) {}

  resolve(schema: Json): Json {
    let current = schema
    while (current && typeof current.$ref === 'string') {
      current = current.$ref.replace(/^#\//, '').split('/').reduce((node: Json, key: string) => node[key.replace(/~1/g, '/').replace(/~0/g, '~')], this.doc)
    }
    return current ?? {}
  }

  of(input: Json | undefined, name?: string, depth = 0, hostileWeight = this.hostileWeight): fc.Arbitrary<unknown> {
    const override = name !== undefined ? this.overrides[name] : undefined
    const valid = override ?? this.valid(this.resolve(input ?? {}), depth)
    return hostileWeight === 0 ? valid : fc.oneof({ weight: 8, arbitrary: valid }, { weight: hostileWeight, arbitrary: hostileJson })
  }

  valid(schema: Json, depth: number): fc.Arbitrary<unknown> {
    if (depth > 4) return fc.constant(null)
    if ('const' in schema) return fc.constant(schema.const)
    if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum)
    const branches = schema.oneOf ?? schema.anyOf
    if (Array.isArray(branches)) return fc.oneof(...branches.map((branch: Json) => this.of(branch, undefined, depth + 1)))
    if (Array.isArray(schema.allOf)) return this.valid(this.resolve(schema.allOf[0]), depth)
    if (Array.isArray(schema.type)) return fc.oneof(...schema.type.map((type: string) => this.valid({ ...schema, type }, depth)))
    switch (schema.type) {
      case 'string':
        return this.string(schema)
      case 'integer':
        return fc.oneof(
          fc.integer({ min: Math.max(schema.minimum ?? -1000, -(2 ** 31)), max: Math.min(schema.maximum ?? 100_000, 2 ** 31) }),
          fc.constantFrom(...boundaryIntegers(schema)),
        )
      case 'number':
        return fc.double({ noNaN: true, noDefaultInfinity: true })
      case 'boolean':
        return fc.boolean()
      case 'null':
        return fc.constant(null)
      case 'array':
        return fc.array(this.of(schema.items ?? {}, undefined, depth + 1), { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 4, 4) })
      case 'object':
        return this.object(schema, depth)
      default:
        return fc.jsonValue({ maxDepth: 2 })
    }
  }

  string(schema: Json): fc.Arbitrary<string> {
    if (schema.format === 'uuid') return fc.uuid()
    if (schema.format === 'date-time') return fc.date({ noInvalidDate: true, min: new Date(0), max: new Date('2100-01-01') }).map((date) => date.toISOString())
    if (typeof schema.pattern === 'string') {
      try {
        return fc.stringMatching(new RegExp(schema.pattern))
      } catch {
        // a pattern fast-check cannot generate from (lookaheads): any short string, filtered when it can be
        const pattern = new RegExp(schema.pattern)
        return fc.oneof(fc.string({ maxLength: 20 }).filter((value) => pattern.test(value)), fc.string({ maxLength: 20 }))
      }
    }
    return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 20, 20) })
  }

  object(schema: Json, depth: number): fc.Arbitrary<unknown> {
    const properties = (schema.properties ?? {}) as Json
    const required = new Set<string>(schema.required ?? [])
    const record: Record<string, fc.Arbitrary<unknown>> = {}
    for (const [key, property] of Object.entries(properties)) record[key] = this.of(property as Json, key, depth + 1)
    const base = fc.record(record, { requiredKeys: Object.keys(properties).filter((key) => required.has(key)) })
    const extra = schema.additionalProperties === false ? fc.constant({}) : fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 })
    return fc.tuple(base, extra).map(([known, more]) => ({ ...more, ...known }))
  }
}
