import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

t.test('defaults follow the SPEC', async (t) => {
  const config = loadConfig({})
  t.match(config, { HOST: '127.0.0.1', PORT: 3000, DATA_DIR: './data', MAX_BODY_BYTES: 1048576, MAX_PAGE_BYTES: 16777216, MAX_EVENTS_PER_APPEND: 1000, SNAPSHOT_EVERY: 100, SNAPSHOT_KEEP: 5, SEND_TIMEOUT_MS: 60000, REQUEST_TIMEOUT_MS: 30000, MAX_CONNECTIONS: 1024 })
  t.ok(Object.isFrozen(config))
})

t.test('a bad value is one line naming the variable', async (t) => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: 'abc' }, 'config: PORT must be an integer (got "abc")'],
    [{ PORT: '70000' }, 'config: PORT must be <= 65535 (got "70000")'],
    [{ MAX_BODY_BYTES: '1.5' }, 'config: MAX_BODY_BYTES must be an integer (got "1.5")'],
    [{ MAX_PAGE_BYTES: 'lots' }, 'config: MAX_PAGE_BYTES must be an integer (got "lots")'],
    [{ MAX_PAGE_BYTES: '100' }, 'config: MAX_PAGE_BYTES must be >= 1024 (got "100")'],
    [{ SEND_TIMEOUT_MS: '10' }, 'config: SEND_TIMEOUT_MS must be >= 100 (got "10")'],
    [{ REQUEST_TIMEOUT_MS: 'soon' }, 'config: REQUEST_TIMEOUT_MS must be an integer (got "soon")'],
    [{ MAX_CONNECTIONS: '0' }, 'config: MAX_CONNECTIONS must be >= 1 (got "0")'],
    [{ DATABASE_URL: 'mysql://x' }, 'config: DATABASE_URL must be a postgres:// URL (got "mysql://x")'],
    [{ LOG_LEVEL: 'loud' }, 'config: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")'],
    [{ LOG_FORMAT: 'fancy' }, 'config: LOG_FORMAT must be one of json, pretty (got "fancy")'],
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), new ConfigError(message), message)
  }
})

t.test('LOG_FORMAT is unset by default (the terminal decides) and takes json or pretty', async (t) => {
  t.equal(loadConfig({}).LOG_FORMAT, undefined)
  t.equal(loadConfig({ LOG_FORMAT: 'pretty' }).LOG_FORMAT, 'pretty')
  t.equal(loadConfig({ LOG_FORMAT: 'json' }).LOG_FORMAT, 'json')
})

t.test('API_KEYS_FILE is read once, one entry a line', async (t) => {
  const dir = t.testdir({ keys: 'k1:acme:read\n\nk2:*:admin\n' })
  t.equal(loadConfig({ API_KEYS_FILE: `${dir}/keys` }).API_KEYS, 'k1:acme:read,k2:*:admin')
  t.throws(() => loadConfig({ API_KEYS_FILE: `${dir}/missing` }), /API_KEYS_FILE cannot be read/)
})

t.test('ENCRYPTION_KEY is the base64 of 32 bytes, or read from ENCRYPTION_KEY_FILE', async (t) => {
  const key = Buffer.alloc(32, 7).toString('base64')
  t.equal(loadConfig({ ENCRYPTION_KEY: key }).ENCRYPTION_KEY, key)
  t.equal(loadConfig({}).ENCRYPTION_KEY, undefined)
  const dir = t.testdir({ key: `${key}\n`, bad: 'short\n' })
  t.equal(loadConfig({ ENCRYPTION_KEY_FILE: `${dir}/key` }).ENCRYPTION_KEY, key)
  for (const [env, message] of [
    [{ ENCRYPTION_KEY: Buffer.alloc(16).toString('base64') }, 'config: ENCRYPTION_KEY must be the base64 of 32 bytes'],
    [{ ENCRYPTION_KEY: 'not base64 at all' }, 'config: ENCRYPTION_KEY must be the base64 of 32 bytes'],
    [{ ENCRYPTION_KEY_FILE: `${dir}/bad` }, 'config: ENCRYPTION_KEY must be the base64 of 32 bytes'],
    [{ ENCRYPTION_KEY_PREVIOUS: 'x' }, 'config: ENCRYPTION_KEY_PREVIOUS must be the base64 of 32 bytes'],
  ] as [Record<string, string>, string][]) {
    t.throws(() => loadConfig(env), new ConfigError(message), message)
  }
  t.throws(() => loadConfig({ ENCRYPTION_KEY_FILE: `${dir}/missing` }), /ENCRYPTION_KEY_FILE cannot be read/)
  const thrown = (() => {
    try {
      loadConfig({ ENCRYPTION_KEY: 'secret-looking-value' })
    } catch (error) {
      return (error as Error).message
    }
  })()
  t.notMatch(String(thrown), 'secret-looking-value', 'the value is never echoed')
})
