import { GatewayError } from '../core/index.js'
import type { MetadataPolicy } from '../metadata/index.js'
import type { Lease, WorkerPool } from '../workers/index.js'
import type { Targets } from './targets.js'
import type { WorkerSpecs } from './worker-specs.js'

/** A public request as admission sees it: whose plugin, and which of its routes. */
export interface AdmitRequest {
  orgId: string
  pluginId: string
  method: string
  /** The path within the plugin, e.g. `/items/1` (control paths were refused before). */
  path: string
}

/** The client's AbortSignal, asked for only when the request has to wait for a start (creating one costs ~9 µs on Node 20). */
export type ClientSignal = () => AbortSignal

export interface Admission {
  /**
   * A lease on the worker that serves req, or a coded error: the plugin and the org's enabled
   * instance, the route among the declared ones, the worker (started, single-flight, when none
   * runs: only then is its spec built), and the route checked again once the worker has been asked
   * for metadata nobody had. A refusal after the lease was taken gives it back. The holder releases
   * the lease when it is done with the worker (the response body ended, a tunnel closed).
   */
  admit(req: AdmitRequest, signal?: ClientSignal): Promise<Lease>
  /** The refusals admit gives before it takes or starts anything (unknown target, undeclared route). */
  check(req: AdmitRequest): Promise<void>
}

export interface AdmissionDeps {
  targets: Targets
  pool: WorkerPool
  metadata: MetadataPolicy
  specs: WorkerSpecs
}

export const routeNotFound = (pluginId: string) => new GatewayError('ROUTE_NOT_FOUND', 404, `plugin ${pluginId} has no such route`)

export function createAdmission(deps: AdmissionDeps): Admission {
  const { targets, pool, metadata, specs } = deps

  async function checked(req: AdmitRequest) {
    const t = await targets.target(req.orgId, req.pluginId, { requireEnabled: true })
    // Routes known before a start refuse undeclared ones before any worker starts; unknown ones are
    // checked once a worker runs.
    const routes = metadata.routesBeforeStart(t.view)
    if (routes && !routes.matches(req.method, req.path)) throw routeNotFound(req.pluginId)
    return { t, known: routes !== null }
  }

  return {
    async check(req) {
      await checked(req)
    },

    async admit(req, signal) {
      const { t, known } = await checked(req)
      const lease = pool.leaseReady(req.orgId, req.pluginId) ?? (await pool.acquire(specs.specOf(t), signal?.()))
      if (known) return lease
      try {
        if (!metadata.ensureRoutes(lease.worker).matches(req.method, req.path)) throw routeNotFound(req.pluginId)
        return lease
      } catch (err) {
        lease.release()
        throw err
      }
    },
  }
}
