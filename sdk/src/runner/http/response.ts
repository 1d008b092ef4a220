import { ServerResponse, STATUS_CODES } from 'node:http'
import { mimeType, withDefaultCharset, withUtf8 } from './mime.js'
import type { WorkerRequest } from './request.js'

type HeaderValue = string | number | readonly string[]

/** What Express's encodeurl escapes in a Location: spaces, quotes, brackets, non-ASCII; a lone `%`. */
const UNSAFE_IN_URL = /[^\x21-\x7e]|["<>`{}]|%(?![0-9A-Fa-f]{2})/gu

/** A lone surrogate has no UTF-8 form: it becomes U+FFFD, as in encodeurl. */
function encodeUnsafe(char: string): string {
  try {
    return encodeURIComponent(char)
  } catch {
    return '%EF%BF%BD'
  }
}

/** The response route handlers get: node:http's class with Express's helpers. */
export class WorkerResponse extends ServerResponse<WorkerRequest> {
  /** Express's per-response scratch space. */
  locals: Record<string, unknown> = {}

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

  /** Express `res.set`: one header, or an object of them; a text-like content-type gets utf-8. */
  set(field: string | Record<string, HeaderValue>, value?: HeaderValue): this {
    if (typeof field === 'object') {
      for (const [name, v] of Object.entries(field)) this.set(name, v)
      return this
    }
    const stored = Array.isArray(value) ? value.map(String) : String(value)
    if (field.toLowerCase() !== 'content-type' || typeof stored !== 'string') return this.setHeader(field, stored)
    return this.setHeader(field, withDefaultCharset(stored))
  }

  header(field: string | Record<string, HeaderValue>, value?: HeaderValue): this {
    return this.set(field, value)
  }

  get(name: string): string | number | string[] | undefined {
    return this.getHeader(name)
  }

  /** Express `res.append`: adds a value to a header (set-cookie stays a list). */
  append(name: string, value: string | readonly string[]): this {
    const prev = this.getHeader(name)
    const added = Array.isArray(value) ? value : [value as string]
    if (prev === undefined) return this.set(name, added.length === 1 ? added[0] : added)
    return this.set(name, [...(Array.isArray(prev) ? prev : [String(prev)]), ...added])
  }

  /** `json`, `.png` or a MIME type. */
  type(contentType: string): this {
    return this.set('content-type', mimeType(contentType))
  }

  contentType(contentType: string): this {
    return this.type(contentType)
  }

  /** Express `res.location`: escaped as encodeurl does; `back` is the Referer, else `/`. */
  location(url: string): this {
    const target = url === 'back' ? (this.req.get('referrer') ?? this.req.get('referer') ?? '/') : url
    return this.setHeader('location', target.replace(UNSAFE_IN_URL, encodeUnsafe))
  }

  json(body: unknown): this {
    this.assertUnanswered()
    if (!this.hasHeader('content-type')) this.type('json')
    return this.sendText(JSON.stringify(body) ?? '')
  }

  send(body?: string | Buffer | Uint8Array | object | number | boolean | null): this {
    this.assertUnanswered()
    if (typeof body === 'string') return this.sendText(body)
    if (body instanceof Uint8Array) {
      if (!this.hasHeader('content-type')) this.type('bin')
      return this.sendBytes(body)
    }
    if (body === undefined || body === null) return this.sendBytes()
    return this.json(body)
  }

  /** A string goes out as utf-8, and says so (text/html unless a type is set). */
  private sendText(body: string): this {
    this.setHeader('content-type', withUtf8(String(this.getHeader('content-type') ?? 'text/html')))
    return this.sendBytes(body)
  }

  private sendBytes(body?: string | Uint8Array): this {
    // As in Express: a 204 or 304 carries no body, so no headers describing one either.
    if (this.statusCode === 204 || this.statusCode === 304) {
      for (const name of ['content-type', 'content-length', 'transfer-encoding']) this.removeHeader(name)
      return this.end()
    }
    return body === undefined ? this.end() : this.end(body)
  }

  sendStatus(code: number): this {
    this.assertUnanswered()
    this.statusCode = code
    return this.type('text').end(STATUS_CODES[code] ?? String(code))
  }

  /** 302 unless a status is given; the body says where to, in text, as Express's does for curl. */
  redirect(statusOrUrl: number | string, url?: string): this {
    this.assertUnanswered()
    const [status, target] = typeof statusOrUrl === 'number' ? [statusOrUrl, url ?? '/'] : [302, statusOrUrl]
    this.statusCode = status
    const location = String(this.location(target).getHeader('location'))
    if (this.req.method === 'HEAD') return this.end()
    return this.type('text').end(`${STATUS_CODES[status] ?? status}. Redirecting to ${location}`)
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
