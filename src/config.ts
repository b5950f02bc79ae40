import { readFileSync } from 'node:fs'
import { Type, type Static } from 'typebox'
import { Ajv } from 'ajv'

const API_KEY_ENTRY = '[^:,\\s]+:([a-z0-9][a-z0-9_-]{0,62}|\\*):(read|write|admin)'

// 32 bytes in base64: 43 characters and one `=` of padding
const BASE64_KEY = '^[A-Za-z0-9+/]{43}=$'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
const LOG_FORMATS = ['json', 'pretty'] as const
const CHOICES: Record<string, readonly string[]> = { LOG_LEVEL: LOG_LEVELS, LOG_FORMAT: LOG_FORMATS }

export const ConfigSchema = Type.Object({
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'must be a postgres:// URL' })),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)), { default: 'info' }),
  // unset: readable lines when stdout is a terminal, JSON lines otherwise (src/observability/logger.ts)
  LOG_FORMAT: Type.Optional(Type.Union(LOG_FORMATS.map((format) => Type.Literal(format)))),
  DATA_DIR: Type.String({ default: './data', minLength: 1 }),
  PROJECTIONS_DIR: Type.Optional(Type.String({ minLength: 1 })),
  // SPEC "Security": comma-separated key:tenant:role; a key is any run of characters but `:`, `,` and spaces
  API_KEYS: Type.Optional(Type.String({ pattern: `^${API_KEY_ENTRY}(,${API_KEY_ENTRY})*$` })),
  // requests per RATE_LIMIT_WINDOW_MS per API key (per client address when no keys are set); 0 turns it off
  RATE_LIMIT_MAX: Type.Integer({ default: 0, minimum: 0 }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 60000, minimum: 1 }),
  // open GET /subscribe streams per API key (no limit on an open server)
  MAX_SUBSCRIPTIONS_PER_KEY: Type.Integer({ default: 100, minimum: 1 }),
  MAX_BODY_BYTES: Type.Integer({ default: 1048576, minimum: 1024 }),
  // SPEC "Details": a page or batch of events stops early at this many bytes of events (always one event)
  MAX_PAGE_BYTES: Type.Integer({ default: 16777216, minimum: 1024 }),
  MAX_EVENTS_PER_APPEND: Type.Integer({ default: 1000, minimum: 1, maximum: 100000 }),
  SNAPSHOT_EVERY: Type.Integer({ default: 100, minimum: 1 }),
  SNAPSHOT_KEEP: Type.Integer({ default: 5, minimum: 1 }),
  // SPEC "Details": a heartbeat comment every 15 s on /subscribe; tests make it short
  SUBSCRIBE_HEARTBEAT_MS: Type.Integer({ default: 15000, minimum: 10 }),
  // SPEC "Details": a connection with response bytes waiting that the client takes none of for this long is closed
  SEND_TIMEOUT_MS: Type.Integer({ default: 60000, minimum: 100 }),
  // SPEC "Details": a request whose headers and body have not all arrived this long after it began is answered 408 and closed
  REQUEST_TIMEOUT_MS: Type.Integer({ default: 30000, minimum: 100 }),
  // open connections (keep-alive and streams included) past which new ones are refused at once
  MAX_CONNECTIONS: Type.Integer({ default: 1024, minimum: 1 }),
  DATABASE_POOL_SIZE: Type.Integer({ default: 20, minimum: 2, maximum: 500 }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 0 }),
  // SPEC "Personal data": the master key that wraps every data key, base64 of 32 bytes (docs/personal-data.md)
  ENCRYPTION_KEY: Type.Optional(Type.String({ pattern: BASE64_KEY })),
  // a second master key data keys may be wrapped with: the old one while a rotation re-wraps them, or the next one
  // while instances are being given it (docs/personal-data.md, "Rotating the master key")
  ENCRYPTION_KEY_PREVIOUS: Type.Optional(Type.String({ pattern: BASE64_KEY })),
})

export type Config = Readonly<Static<typeof ConfigSchema>>

const KNOWN = Object.keys(ConfigSchema.properties)

export class ConfigError extends Error {}

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): Config => {
  const raw: Record<string, unknown> = {}
  for (const name of KNOWN) {
    const value = env[name]
    if (value !== undefined && value !== '') raw[name] = value
  }
  const keysFile = env.API_KEYS_FILE
  if (keysFile && raw.API_KEYS === undefined) {
    try {
      raw.API_KEYS = readFileSync(keysFile, 'utf8').split('\n').map((line) => line.trim()).filter(Boolean).join(',')
    } catch {
      throw new ConfigError(`config: API_KEYS_FILE cannot be read (got "${keysFile}")`)
    }
  }
  readEncryptionKeyFile(env, raw)
  const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: false })
  const validate = ajv.compile(ConfigSchema)
  if (!validate(raw)) {
    const error = validate.errors?.[0]
    const name = error?.instancePath.slice(1) ?? 'configuration'
    // never echo a key back: the message names the variable only
    if (name.startsWith('ENCRYPTION_KEY')) throw new ConfigError(`config: ${name} must be the base64 of 32 bytes`)
    if (name === 'API_KEYS') throw new ConfigError('config: API_KEYS must be comma-separated key:tenant:role entries, role read, write or admin, tenant [a-z0-9][a-z0-9_-]{0,62} or *')
    const got = env[name]
    throw new ConfigError(`config: ${name} ${describe(name, error?.keyword, error?.message)} (got "${got}")`)
  }
  return Object.freeze(raw as Static<typeof ConfigSchema>)
}

// ENCRYPTION_KEY_FILE: the key's base64 in a file (surrounding whitespace ignored); ENCRYPTION_KEY wins when both are set
const readEncryptionKeyFile = (env: NodeJS.ProcessEnv, raw: Record<string, unknown>): void => {
  const file = env.ENCRYPTION_KEY_FILE
  if (!file || raw.ENCRYPTION_KEY !== undefined) return
  try {
    raw.ENCRYPTION_KEY = readFileSync(file, 'utf8').trim()
  } catch {
    throw new ConfigError(`config: ENCRYPTION_KEY_FILE cannot be read (got "${file}")`)
  }
}

const describe = (name: string, keyword: string | undefined, message: string | undefined): string => {
  if (keyword === 'type' && message?.includes('integer')) return 'must be an integer'
  if (keyword === 'pattern' && message?.includes('postgres')) return 'must be a postgres:// URL'
  const choices = CHOICES[name]
  if (choices && (keyword === 'anyOf' || keyword === 'const' || keyword === 'enum')) return `must be one of ${choices.join(', ')}`
  return message ?? 'is invalid'
}
