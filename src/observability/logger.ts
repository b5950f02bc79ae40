import type { LoggerOptions } from 'pino'

export type LogFormat = 'json' | 'pretty'

// JSON lines for machines (a pipe, a file, a log shipper); readable lines for a person at a terminal.
export const logFormatFor = (format: LogFormat | undefined, stdoutIsTTY: boolean): LogFormat => format ?? (stdoutIsTTY ? 'pretty' : 'json')

// One line per request (see app.ts). Keys and event payloads never reach the log at info, in either format.
export const loggerOptions = (level: string, format: LogFormat | undefined, stdoutIsTTY = process.stdout.isTTY === true): LoggerOptions => ({
  level,
  redact: {
    paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'body', 'req.body'],
    censor: '[redacted]',
  },
  // pino-pretty formats in pino's worker thread, so a person's terminal costs the request path nothing
  ...(logFormatFor(format, stdoutIsTTY) === 'pretty'
    ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,startUp', singleLine: true } } }
    : {}),
})
