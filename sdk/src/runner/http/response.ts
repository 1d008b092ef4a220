import { ServerResponse, STATUS_CODES } from 'node:http'
import type { WorkerRequest } from './request.js'

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  html: 'text/html; charset=utf-8',
  bin: 'application/octet-stream',
}

/** The response route handlers get: node:http's class with Express's helpers. */
export class WorkerResponse extends ServerResponse<WorkerRequest> {
  /**
   * A second answer throws ERR_HTTP_HEADERS_SENT, as Express does; left to node:http, ending a
   * finished response emits an 'error' event, which nothing handles by default.
   */
  private assertUnanswered(): void {
    if (this.writableEnded) {
      throw Object.assign(new Error('cannot answer twice: the response was already sent'), { code: 'ERR_HTTP_HEADERS_SENT' })
    }
  }

  status(code: number): this {
    this.statusCode = code
    return this
  }

  set(name: string, value: string | number | readonly string[]): this {
    return this.setHeader(name, value)
  }

  type(contentType: string): this {
    return this.setHeader('content-type', CONTENT_TYPES[contentType] ?? contentType)
  }

  json(body: unknown): this {
    this.assertUnanswered()
    if (!this.hasHeader('content-type')) this.type('json')
    return this.end(JSON.stringify(body) ?? '')
  }

  send(body?: string | Buffer | Uint8Array | object | number | boolean | null): this {
    this.assertUnanswered()
    if (body === undefined || body === null) return this.end()
    if (typeof body === 'string') {
      if (!this.hasHeader('content-type')) this.type('html')
      return this.end(body)
    }
    if (body instanceof Uint8Array) {
      if (!this.hasHeader('content-type')) this.type('bin')
      return this.end(body)
    }
    return this.json(body)
  }

  sendStatus(code: number): this {
    this.assertUnanswered()
    this.statusCode = code
    return this.type('text').end(STATUS_CODES[code] ?? String(code))
  }

  redirect(statusOrUrl: number | string, url?: string): this {
    this.assertUnanswered()
    const [status, location] = typeof statusOrUrl === 'number' ? [statusOrUrl, url ?? '/'] : [302, statusOrUrl]
    this.statusCode = status
    return this.setHeader('location', location).end()
  }
}

export function sendJson(res: WorkerResponse, status: number, json: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) })
  res.end(json)
}

/** The coded error shape the gateway uses too: `{"error":{"code","message"}}`. */
export function sendError(res: WorkerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) return void res.end()
  sendJson(res, status, JSON.stringify({ error: { code, message } }))
}
