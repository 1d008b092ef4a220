import { IncomingMessage, ServerResponse, STATUS_CODES } from 'node:http'
import type { HayRequest, HayResponse, RouteHandler } from '../types.js'

// The Express-compatible subset plugin route handlers get (Hay passes Express req/res). These are
// node:http's own classes, extended the way Express extends them, so streaming writes still work.

const EMPTY = Buffer.alloc(0)

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

const SHORT_TYPES: Record<string, string> = {
  json: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  html: 'text/html; charset=utf-8',
  bin: 'application/octet-stream',
}

export class WorkerResponse extends ServerResponse<WorkerRequest> {
  status(code: number): this {
    this.statusCode = code
    return this
  }

  set(name: string, value: string | number | readonly string[]): this {
    return this.setHeader(name, value)
  }

  type(contentType: string): this {
    return this.setHeader('content-type', SHORT_TYPES[contentType] ?? contentType)
  }

  json(body: unknown): this {
    if (!this.hasHeader('content-type')) this.setHeader('content-type', SHORT_TYPES['json'] as string)
    return this.end(JSON.stringify(body) ?? '')
  }

  send(body?: string | Buffer | Uint8Array | object | number | boolean | null): this {
    if (body === undefined || body === null) return this.end()
    if (typeof body === 'string') {
      if (!this.hasHeader('content-type')) this.setHeader('content-type', SHORT_TYPES['html'] as string)
      return this.end(body)
    }
    if (body instanceof Uint8Array) {
      if (!this.hasHeader('content-type')) this.setHeader('content-type', SHORT_TYPES['bin'] as string)
      return this.end(body)
    }
    return this.json(body)
  }

  sendStatus(code: number): this {
    this.statusCode = code
    return this.type('text').end(STATUS_CODES[code] ?? String(code))
  }
}

/** The views handlers see; the classes above carry every member (checked where they are built). */
export const asHayRequest = (req: WorkerRequest): HayRequest => req as unknown as HayRequest
export const asHayResponse = (res: WorkerResponse): HayResponse => res as unknown as HayResponse

// ---------------------------------------------------------------------------------------------
// Routes: Express 4 semantics for the common cases (`:name`, `:name?`, `*`, case-insensitive,
// optional trailing slash). HEAD is served by GET routes, as Express does.
// ---------------------------------------------------------------------------------------------

export interface CompiledRoute {
  method: string
  pattern: RegExp
  keys: string[]
  handler: RouteHandler
}

const TOKEN = /(\/)?:([A-Za-z0-9_]+)(\?)?|\*|[.+^${}()|[\]\\]/g

export function compileRoute(method: string, path: string, handler: RouteHandler): CompiledRoute {
  const keys: string[] = []
  let wildcard = 0
  const source = path.replace(TOKEN, (token, slash: string | undefined, name: string | undefined, optional: string | undefined) => {
    if (name !== undefined) {
      keys.push(name)
      return optional ? `(?:${slash ? '\\/' : ''}([^\\/]+?))?` : `${slash ? '\\/' : ''}([^\\/]+?)`
    }
    if (token === '*') {
      keys.push(String(wildcard++))
      return '(.*)'
    }
    return `\\${token}`
  })
  const trimmed = source.endsWith('\\/') ? source.slice(0, -2) : source
  return { method, pattern: new RegExp(`^${trimmed}\\/?$`, 'i'), keys, handler }
}

export function matchRoute(
  routes: readonly CompiledRoute[],
  method: string,
  path: string,
): { route: CompiledRoute; params: Record<string, string> } | undefined {
  const wanted = method === 'HEAD' ? 'GET' : method
  for (const route of routes) {
    if (route.method !== wanted && !(method === 'HEAD' && route.method === 'HEAD')) continue
    const m = route.pattern.exec(path)
    if (!m) continue
    const params: Record<string, string> = {}
    route.keys.forEach((key, i) => {
      const raw = m[i + 1]
      if (raw !== undefined) params[key] = safeDecode(raw)
    })
    return { route, params }
  }
  return undefined
}

const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s)
  } catch {
    return s // malformed escapes are handed over as sent
  }
}

export function parseQuery(search: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {}
  if (search === '') return query
  for (const [key, value] of new URLSearchParams(search)) {
    const prev = query[key]
    query[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value]
  }
  return query
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly code: 'INVALID_JSON' | 'PAYLOAD_TOO_LARGE',
    message: string,
  ) {
    super(message)
  }
}

/** Buffers the request body (the exact bytes), refusing more than `maxBytes`. */
export function readBody(req: WorkerRequest, maxBytes: number): Promise<Buffer> {
  const length = req.headers['content-length']
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) {
    return Promise.resolve(EMPTY)
  }
  if (length !== undefined && Number(length) > maxBytes) return Promise.reject(tooLarge(maxBytes))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        cleanup()
        req.resume() // drain and discard the rest
        reject(tooLarge(maxBytes))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

const tooLarge = (maxBytes: number) => new BodyError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${maxBytes} bytes`)

/** Express's body parsers, reduced: JSON (application/json, +json), urlencoded forms, else `{}`. */
export function parseBody(contentType: string | undefined, raw: Buffer): unknown {
  if (contentType === undefined) return {}
  const type = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? ''
  if (type === 'application/json' || type.endsWith('+json')) return parseJson(raw)
  if (type === 'application/x-www-form-urlencoded') return parseQuery(raw.toString('utf8'))
  return {}
}

/** An empty body is `{}`; malformed JSON is a 400. */
export function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return {}
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch (err) {
    throw new BodyError(400, 'INVALID_JSON', `malformed JSON body: ${(err as Error).message}`)
  }
}
