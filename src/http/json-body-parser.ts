import type { FastifyRequest } from 'fastify'

// A Fastify content-type parser around one of json-body.ts's parsers; a Problem it throws becomes the answer.
export const jsonBodyParser =
  (parse: (text: string) => unknown) =>
  (_request: FastifyRequest, body: string | Buffer, done: (error: Error | null, value?: unknown) => void): void => {
    let value: unknown
    try {
      value = parse(typeof body === 'string' ? body : body.toString('utf8'))
    } catch (error) {
      done(error as Error)
      return
    }
    done(null, value)
  }
