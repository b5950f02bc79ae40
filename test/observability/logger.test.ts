import t from 'tap'
import { logFormatFor, loggerOptions } from '../../src/observability/logger.js'
import { databaseLine, migrationsLine, urlsLine } from '../../src/observability/start-up-report.js'

t.test('unset, LOG_FORMAT follows stdout: readable on a terminal, JSON otherwise; set, it wins', async (t) => {
  t.equal(logFormatFor(undefined, true), 'pretty')
  t.equal(logFormatFor(undefined, false), 'json')
  t.equal(logFormatFor('json', true), 'json')
  t.equal(logFormatFor('pretty', false), 'pretty')
  t.match(loggerOptions('info', undefined, true), { transport: { target: 'pino-pretty' } }, 'a terminal gets pino-pretty')
  t.notOk('transport' in loggerOptions('info', undefined, false), 'a pipe gets pino\'s own JSON')
  t.match(loggerOptions('info', 'pretty', false), { redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'body', 'req.body'] } }, 'redaction holds in both formats')
})

t.test('the start-up lines say in words where everything is and what the migrations did', async (t) => {
  t.equal(urlsLine('http://127.0.0.1:3000').message, 'ready: API http://127.0.0.1:3000 · API reference http://127.0.0.1:3000/docs · dashboard http://127.0.0.1:3000/')
  t.equal(urlsLine('http://0.0.0.0:8080').fields.dashboard, 'http://localhost:8080/', 'a server on every interface is named as localhost')
  t.equal(databaseLine({ database: 'postgresql', host: 'db:5432', name: 'annalist' }).message, 'database: PostgreSQL at db:5432, database annalist')
  t.equal(databaseLine({ database: 'embedded (PGlite)', dataDir: './data' }).message, 'database: embedded PostgreSQL (PGlite), data in ./data')
  t.equal(migrationsLine([1, 2, 3], [1, 2, 3]).message, 'migrations: applied 3 migrations to a new database, the schema is now up to date (0003)')
  t.equal(migrationsLine([3], [1, 2, 3]).message, 'migrations: applied 1 migration to an older schema, the schema is now up to date (0003)')
  t.equal(migrationsLine([], [1, 2, 13]).message, 'migrations: the schema was already up to date (0013)')
})
