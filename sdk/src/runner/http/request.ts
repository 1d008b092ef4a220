import { IncomingMessage } from 'node:http'

const EMPTY = Buffer.alloc(0)

/**
 * The request route handlers get: node:http's own class, extended with the Express subset Hay's
 * handlers use (Hay passes Express req/res), so streaming still works.
 */
export class WorkerRequest extends IncomingMessage {
  path = '/'
  originalUrl = ''
  query: Record<string, string | string[]> = {}
  params: Record<string, string> = {}
  body: unknown = {}
  rawBody: Buffer = EMPTY

  get(name: string): string | undefined {
    const value = this.headers[name.toLowerCase()]
    return Array.isArray(value) ? value.join(', ') : value
  }

  header(name: string): string | undefined {
    return this.get(name)
  }
}
