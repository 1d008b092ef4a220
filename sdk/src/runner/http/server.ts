// The worker's HTTP surface (CONTRACT.md §3): /health and /metadata, the control endpoints, then
// the plugin's routes. Control endpoints come first and shadow a plugin route with the same method
// and path, as in Hay.
import { createServer, type Server } from 'node:http'
import type { RouteTable } from '../../../../src/contract/route-pattern.js'
import type { HayLogger, HayRequest, HayResponse, RouteHandler } from '../../types.js'
import type { ControlEndpoint } from '../control.js'
import { BodyError, parseBody, parseJson, readBody } from './body.js'
import { parseQuery } from './query.js'
import { WorkerRequest } from './request.js'
import { sendError, sendJson, WorkerResponse } from './response.js'

export type WorkerServer = Server<typeof WorkerRequest, typeof WorkerResponse>

export interface WorkerServerDeps {
  /** The GET /health body. */
  healthJson: string
  metadataJson(): string
  /** The control endpoint serving this method and path, if one does. */
  control(method: string, path: string): ControlEndpoint | undefined
  routes(): RouteTable<RouteHandler>
  maxBodyBytes: number
  logger: HayLogger
}

export function createWorkerServer(deps: WorkerServerDeps): WorkerServer {
  const handle = async (req: WorkerRequest, res: WorkerResponse): Promise<void> => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method ?? 'GET'

    if (method === 'GET' && path === '/health') return sendJson(res, 200, deps.healthJson)
    if (method === 'GET' && path === '/metadata') return sendJson(res, 200, deps.metadataJson())
    const control = deps.control(method, path)
    if (control) {
      const raw = await readBody(req, deps.maxBodyBytes)
      // Control bodies are JSON whatever the content-type (CONTRACT.md §3); an unparsable one
      // reaches the endpoint as "no body", so it answers a 400 in its own shape.
      let body: unknown
      try {
        body = parseJson(raw)
      } catch {
        body = undefined
      }
      const reply = await control(body)
      return sendJson(res, reply.status, JSON.stringify(reply.body))
    }

    const match = deps.routes().match(method, path)
    if (!match) return sendError(res, 404, 'NOT_FOUND', `no route for ${method} ${path}`)
    req.path = path
    req.originalUrl = url
    req.params = match.params
    if (q !== -1) {
      const query = parseQuery(url.slice(q + 1))
      req.query = query instanceof Promise ? await query : query
    }
    req.rawBody = await readBody(req, deps.maxBodyBytes)
    const body = parseBody(req.headers['content-type'], req.rawBody)
    req.body = body instanceof Promise ? await body : body
    // The classes carry every member of the public views; the cast only narrows what authors see.
    await match.value(req as unknown as HayRequest, res as unknown as HayResponse)
  }

  return createServer<typeof WorkerRequest, typeof WorkerResponse>(
    { IncomingMessage: WorkerRequest, ServerResponse: WorkerResponse },
    (req, res) => {
      // A plugin writing to a finished response (res.end twice) must cost it that write, not the worker.
      res.on('error', (err) => deps.logger.error(`${req.method} ${req.url}: response error`, err))
      handle(req, res).catch((err: unknown) => {
        if (err instanceof BodyError) {
          if (err.status === 413) res.setHeader('connection', 'close')
          return sendError(res, err.status, err.code, err.message)
        }
        deps.logger.error(`${req.method} ${req.url} failed`, err)
        if (res.writableEnded) return // answered already: the failure is only the handler's own
        // Once bytes are on the wire there is no status left to change: cut the response short.
        if (res.headersSent) return void res.destroy()
        // Plugin routes face the public through the gateway: the details stay in the worker's log.
        sendError(res, 500, 'INTERNAL', 'internal error')
      })
    },
  )
}
