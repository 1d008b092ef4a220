import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { Pool } from 'undici'
import { z } from 'zod'
import type { Cluster } from '../cluster/index.js'
import { callJson, type ControlResult } from '../workers/index.js'
import type { ClusterRepo } from '../db/index.js'
import type { Clock, Logger } from '../core/index.js'
import { GatewayError, errorText, isErrorCode, type ErrorCode } from '../core/index.js'
import type { ClusterPort } from '../gateway/index.js'
import { peerHeaders, WorkerListings, type ClusterRouting, type PeerWorkers } from '../routes/index.js'

const OwnerError = z.object({ error: z.object({ code: z.string(), message: z.string() }) })

/**
 * The owner's own error, passed on as the owner gave it (status, code, Retry-After): a 503 there is a
 * 503 here. An answer that is not one of our errors is the owner failing: 502.
 */
function ownerRefusal(gatewayId: string, reply: ControlResult): GatewayError {
  const parsed = OwnerError.safeParse(reply.body)
  const known = parsed.success && isErrorCode(parsed.data.error.code) && reply.status >= 400 && reply.status <= 599
  if (!known) return new GatewayError('UPSTREAM_ERROR', 502, `owner gateway ${gatewayId} answered ${reply.status}`)
  const { code, message } = parsed.data.error
  return new GatewayError(code as ErrorCode, reply.status as ContentfulStatusCode, message, { retryAfterSeconds: reply.retryAfterSeconds })
}

export interface ClusterLinkDeps {
  cluster: Cluster
  repo: ClusterRepo
  secret: string
  clock: Clock
  log: Logger
  /** Bound on one internal call to a peer. */
  timeoutMs: number
}

/**
 * The Node side of a cluster: keep-alive pools to peer gateways, and the service's cluster port
 * (control calls, stops and change notices carried to the owner over its internal URL).
 */
export function createClusterLink(deps: ClusterLinkDeps) {
  const { cluster, repo, secret, clock, log } = deps
  const pools = new Map<string, Pool>()

  function peerDispatcher(url: string): Pool {
    let pool = pools.get(url)
    if (!pool) {
      pool = new Pool(url, { connections: 32, keepAliveTimeout: 30_000 })
      pools.set(url, pool)
    }
    return pool
  }

  /** A POST with a JSON payload, or a GET without one, to a peer's /internal/*. */
  const internalCall = (url: string, path: string, generation: number, payload?: unknown): Promise<ControlResult> =>
    callJson(peerDispatcher(url), {
      method: payload === undefined ? 'GET' : 'POST',
      path,
      payload,
      timeoutMs: deps.timeoutMs,
      headers: peerHeaders(secret, generation),
    })

  async function workersOf(peer: { gatewayId: string; url: string }): Promise<PeerWorkers> {
    try {
      const reply = await internalCall(peer.url, '/internal/workers', 0)
      const parsed = WorkerListings.safeParse(reply.body)
      if (reply.status !== 200 || !parsed.success)
        return { gatewayId: peer.gatewayId, error: `answered ${reply.status} without a worker list` }
      return { gatewayId: peer.gatewayId, workers: parsed.data.workers }
    } catch (err) {
      return { gatewayId: peer.gatewayId, error: errorText(err) }
    }
  }

  const routing: ClusterRouting = {
    secret,
    gatewayId: cluster.gatewayId,
    place: cluster.place,
    claim: cluster.claim,
    ownerChanged: cluster.ownerChanged,
    ownerUnreachable: cluster.ownerUnreachable,
    peerDispatcher,
    peerWorkers: async () => Promise.all((await cluster.peers()).map(workersOf)),
  }

  const port: ClusterPort = {
    async remoteControl(orgId, pluginId, method, path, payload) {
      let placement = await cluster.place(orgId, pluginId)
      for (let attempt = 0; placement.kind === 'remote'; attempt++) {
        const { owner } = placement
        const reply = await internalCall(owner.url, `/internal/orgs/${orgId}/plugins/${pluginId}/control`, owner.generation, {
          method,
          path,
          payload,
        }).catch((err: unknown) => {
          throw new GatewayError('UPSTREAM_ERROR', 502, `owner gateway ${owner.gatewayId} failed: ${errorText(err)}`, { cause: err })
        })
        if (reply.status === 200) return reply.body as ControlResult
        const refusal = ownerRefusal(owner.gatewayId, reply)
        // The owner we had cached has handed the key on: ask where it is now, once.
        if (refusal.code !== 'NOT_OWNER' || attempt > 0) throw refusal
        placement = await cluster.ownerChanged(orgId, pluginId)
      }
      return null
    },

    async remoteStop(orgId, pluginId) {
      // Only a read: stopping must not take a lease nobody holds.
      const lease = await repo.lease(orgId, pluginId)
      if (!lease || lease.ownerGatewayId === cluster.gatewayId || lease.expiresAt.getTime() <= clock.now()) return false
      const owner = await repo.gateway(lease.ownerGatewayId)
      if (!owner) return false
      const reply = await internalCall(owner.address, `/internal/orgs/${orgId}/plugins/${pluginId}/stop`, lease.generation, {})
      return (reply.body as { stopped?: boolean } | null)?.stopped === true
    },

    async instanceChanged(orgId, pluginId) {
      const peers = await cluster.peers()
      await Promise.all(
        peers.map((peer) =>
          internalCall(peer.url, `/internal/orgs/${orgId}/plugins/${pluginId}/changed`, 0, {}).catch((err: unknown) => {
            // A dead peer has no worker to update; it reads the row afresh when it comes back.
            log.warn({ err, peer: peer.gatewayId, orgId, pluginId }, 'could not tell a peer about an instance change')
          }),
        ),
      )
    },
  }

  return {
    routing,
    port,
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()))
    },
  }
}
