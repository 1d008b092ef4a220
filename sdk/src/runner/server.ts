import { createServer, type Server } from 'node:http'
import type { HayLogger } from '../types.js'
import { messageOf } from './errors.js'
import {
  asHayRequest,
  asHayResponse,
  BodyError,
  matchRoute,
  parseBody,
  parseJson,
  parseQuery,
  readBody,
  WorkerRequest,
  WorkerResponse,
} from './http.js'
import type { Lifecycle, Reply } from './lifecycle.js'
import type { Registry } from './registry.js'

export interface WorkerServerDeps {
  /** GET /health body, fixed for the process's life. */
  healthJson: string
  registry: Registry
  lifecycle: Lifecycle
  logger: HayLogger
  maxBodyBytes: number
}

type Control = (body: unknown) => Promise<Reply>

/**
 * The worker's HTTP surface (CONTRACT.md §3): control endpoints first (they shadow any plugin
 * route with the same method and path, as in Hay), then the plugin's routes, else 404.
 */
export function createWorkerServer(deps: WorkerServerDeps): Server<typeof WorkerRequest, typeof WorkerResponse> {
  const { registry, lifecycle, logger } = deps
  const controls = new Map<string, Control>([
    ['POST /validate-auth', (body) => lifecycle.validateAuth(body)],
    ['POST /config-update', (body) => lifecycle.configUpdate(body)],
    ['POST /disable', () => lifecycle.disable()],
    ['GET /mcp/list-tools', () => lifecycle.listTools()],
    ['POST /mcp/call-tool', (body) => lifecycle.callTool(body)],
  ])

  const handle = async (req: WorkerRequest, res: WorkerResponse): Promise<void> => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method ?? 'GET'

    if (method === 'GET' && path === '/health') return sendRaw(res, 200, deps.healthJson)
    if (method === 'GET' && path === '/metadata') return sendRaw(res, 200, registry.metadataJson())

    const control = controls.get(`${method} ${path}`) ??
      (method === 'POST' && path.startsWith('/cron/') ? (() => lifecycle.runCron(path.slice('/cron/'.length))) : undefined)
    if (control) {
      const raw = await readBody(req, deps.maxBodyBytes)
      // Control bodies are JSON by contract (CONTRACT.md §3), whatever content-type the caller set;
      // an unparsable one reaches the endpoint as "no body" so it answers in its own shape (400).
      let body: unknown
      try {
        body = parseJson(raw)
      } catch {
        body = undefined
      }
      const reply = await control(body)
      return sendRaw(res, reply.status, JSON.stringify(reply.body))
    }

    const match = matchRoute(registry.routes, method, path)
    if (!match) return sendError(res, 404, 'NOT_FOUND', `no route for ${method} ${path}`)
    req.path = path
    req.originalUrl = url
    req.params = match.params
    req.query = q === -1 ? {} : parseQuery(url.slice(q + 1))
    req.rawBody = await readBody(req, deps.maxBodyBytes)
    req.body = parseBody(req.headers['content-type'], req.rawBody)
    await match.route.handler(asHayRequest(req), asHayResponse(res))
  }

  return createServer<typeof WorkerRequest, typeof WorkerResponse>(
    { IncomingMessage: WorkerRequest, ServerResponse: WorkerResponse },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (err instanceof BodyError) {
          if (err.status === 413) res.setHeader('connection', 'close')
          return sendError(res, err.status, err.code, err.message)
        }
        logger.error(`${req.method} ${req.url} failed`, err)
        // Once bytes are on the wire there is no status left to change: cut the response short.
        if (res.headersSent) return void res.destroy()
        sendError(res, 500, 'INTERNAL', messageOf(err))
      })
    },
  )
}

function sendRaw(res: WorkerResponse, status: number, json: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) })
  res.end(json)
}

function sendError(res: WorkerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) return void res.end()
  sendRaw(res, status, JSON.stringify({ error: { code, message } }))
}
