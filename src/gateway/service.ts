import { z } from 'zod'
import type { Clock, Logger } from '../core/index.js'
import { GatewayError } from '../core/index.js'
import type { AuthState, InstanceConfig, PluginInstanceRow, PluginRow } from '../db/index.js'
import type { PluginView, Registry } from '../registry/index.js'
import type { InstanceRef, SecretBox } from '../secrets/index.js'
import {
  createUnavailableSecretBox,
  isSecretField,
  openAuth,
  openConfig,
  sealAuth,
  sealConfig,
  secretsUnavailable,
  unmaskConfig,
} from '../secrets/index.js'
import type { ControlResult, Lease, Worker, WorkerPool, WorkerSpec } from '../workers/index.js'
import { validateConfig } from './config-validation.js'
import { storeConfigPerSchema } from './stored-secrets.js'

// How often a plugin without usable metadata is asked for it again; its 503s say Retry-After that long.
const METADATA_RETRY_MS = 5_000

export interface MetadataPort {
  /** Fetches and stores metadata unless the plugin's state is already fresh; never throws for fetch failures. */
  ensureFresh(pluginId: string, port: number, codeChecksum: string): Promise<PluginRow>
  markStale(pluginId: string): Promise<PluginRow | undefined>
}

export type CallWorker = (
  worker: Worker,
  method: 'GET' | 'POST',
  path: string,
  payload: unknown,
  timeoutMs: number,
) => Promise<ControlResult>

/** What the service needs from the cluster; absent on a single gateway. */
export interface ClusterPort {
  /** A control call run on the worker's owner when another gateway owns it; null when this one does. */
  remoteControl(orgId: string, pluginId: string, method: 'GET' | 'POST', path: string, payload: unknown): Promise<ControlResult | null>
  /** Stops the worker on its owner when another gateway owns it; false when this one does. */
  remoteStop(orgId: string, pluginId: string): Promise<boolean>
  /** Tells every other gateway that an instance changed, so owners apply it to their workers. */
  instanceChanged(orgId: string, pluginId: string): Promise<void>
}

export interface ServiceDeps {
  registry: Registry
  pool: WorkerPool
  metadata: MetadataPort
  callWorker: CallWorker
  clock: Clock
  log: Logger
  controlTimeoutMs: number
  cluster?: ClusterPort
  /** Seals config secrets and credentials at rest; without one, writes that need sealing are refused. */
  secrets?: SecretBox
}

export interface Target {
  view: PluginView
  instance: PluginInstanceRow
}

const ValidateAuthReply = z.object({ valid: z.boolean(), error: z.string().optional() })
const ConfigUpdateReply = z.object({ success: z.boolean(), error: z.string().optional() })

/**
 * The gateway's use cases over registry, pool and metadata, shared by the public and admin routes.
 * Runtime-agnostic: the pool and worker calls are injected.
 */
export function createGatewayService(deps: ServiceDeps) {
  const { registry, pool, metadata, log } = deps
  const secrets = deps.secrets ?? createUnavailableSecretBox()
  // Opened once per stored row (rows are replaced, never mutated, on save): the hot path builds a
  // spec per request and must not decrypt each time.
  const opened = new WeakMap<PluginInstanceRow, { config: InstanceConfig; authState: AuthState | null }>()

  function pluginOrThrow(pluginId: string): PluginView {
    const view = registry.plugin(pluginId)
    if (view) return view
    const invalid = registry.invalidPlugin(pluginId)
    if (invalid) throw new GatewayError('PLUGIN_INVALID', 404, `plugin ${pluginId} is invalid: ${invalid.error}`)
    throw new GatewayError('PLUGIN_NOT_FOUND', 404, `no plugin ${pluginId}`)
  }

  async function target(orgId: string, pluginId: string, opts: { requireEnabled: boolean }): Promise<Target> {
    const view = pluginOrThrow(pluginId)
    const instance = await registry.instance(orgId, pluginId)
    if (!instance) throw new GatewayError('INSTANCE_NOT_FOUND', 404, `plugin ${pluginId} is not installed for org ${orgId}`)
    if (opts.requireEnabled && !instance.enabled) {
      throw new GatewayError('INSTANCE_DISABLED', 404, `plugin ${pluginId} is disabled for org ${orgId}`)
    }
    return { view, instance }
  }

  /** The plaintext config and auth of an instance: only worker specs and validation calls see it. */
  function plainOf(instance: PluginInstanceRow): { config: InstanceConfig; authState: AuthState | null } {
    let plain = opened.get(instance)
    if (!plain) {
      plain = { config: openConfig(secrets, instance, instance.config), authState: openAuth(secrets, instance, instance.authState) }
      opened.set(instance, plain)
    }
    return plain
  }

  function specOf({ view, instance }: Target): WorkerSpec {
    const plain = plainOf(instance)
    return {
      orgId: instance.orgId,
      pluginId: view.id,
      pluginDir: view.dir,
      entryPath: view.entryPath,
      sdkVersion: view.sdkVersion,
      envAllowList: view.envAllowList,
      permissions: view.manifest.permissions,
      config: plain.config,
      authState: plain.authState,
    }
  }

  /**
   * The stored form of a config: secret fields sealed. Refuses up front, naming the reason, when a
   * secret would have to be stored and there is no key.
   */
  function sealForStorage(ref: InstanceRef, view: PluginView, config: InstanceConfig): InstanceConfig {
    const schema = view.row.metadata?.configSchema ?? null
    if (!secrets.hasKey) {
      const field = Object.keys(config).find((f) => config[f] !== undefined && config[f] !== null && isSecretField(schema, f))
      if (field !== undefined) {
        throw secretsUnavailable(
          schema === null
            ? `cannot store config.${field}: plugin ${view.id}'s configSchema is not known yet (it is read on the plugin's first start), so every config value is treated as secret`
            : `cannot store config.${field}: plugin ${view.id} marks it encrypted`,
        )
      }
    }
    return sealConfig(secrets, ref, schema, config)
  }

  // Plugin id → when its metadata was last fetched from one of its workers.
  const metadataRetries = new Map<string, number>()

  /**
   * Pool hook: a new worker of a plugin whose metadata is not fresh fetches it before serving.
   * After a failed fetch the last good metadata still routes, so the retry runs in the background
   * instead of adding its retries and timeouts to every cold start.
   */
  async function afterReady(worker: Worker): Promise<void> {
    const view = registry.plugin(worker.pluginId)
    if (view?.sdkVersion !== 'v2' || view.row.metadataState === 'fresh') return
    const refresh = fetchMetadataFrom(worker, view)
    if (view.row.metadataState === 'error' && view.row.metadata) {
      refresh.catch((err: unknown) => log.warn({ err, pluginId: worker.pluginId }, 'background metadata refresh failed'))
      return
    }
    await refresh
  }

  /** Fetches the plugin's metadata from worker (the code view describes) into the registry. */
  function fetchMetadataFrom(worker: Worker, view: PluginView): Promise<void> {
    metadataRetries.set(worker.pluginId, deps.clock.now())
    return metadata.ensureFresh(worker.pluginId, worker.port, view.checksum).then(async (row) => {
      registry.updateRow(row)
      if (row.metadata && !sameJson(row.metadata.configSchema, view.row.metadata?.configSchema)) {
        // A new schema: stored config follows it (a failure leaves it for the next start-up's migration).
        await storeConfigPerSchema({ registry, secrets, log }, row.id).catch((err: unknown) =>
          log.warn({ err, pluginId: row.id }, 'stored config could not follow the new schema'),
        )
      }
    })
  }

  /**
   * The answer for a request to a running worker whose plugin has no usable metadata (the fetch at
   * its start failed). The worker is asked again, off the request path, at most once per
   * METADATA_RETRY_MS per plugin: without this a busy plugin would answer 503 until it restarted,
   * and its traffic keeps it from idling out.
   */
  function metadataUnavailable(worker: Worker): GatewayError {
    const view = registry.plugin(worker.pluginId)
    const last = metadataRetries.get(worker.pluginId)
    if (view?.sdkVersion === 'v2' && (last === undefined || deps.clock.now() - last >= METADATA_RETRY_MS)) {
      fetchMetadataFrom(worker, view).catch((err: unknown) => log.warn({ err, pluginId: worker.pluginId }, 'metadata retry failed'))
    }
    return new GatewayError('METADATA_UNAVAILABLE', 503, `metadata of ${worker.pluginId} is unavailable`, {
      retryAfterSeconds: METADATA_RETRY_MS / 1000,
    })
  }

  async function withWorker<T>(t: Target, fn: (worker: Worker) => Promise<T>): Promise<T> {
    const lease = await pool.acquire(specOf(t))
    try {
      return await fn(lease.worker)
    } finally {
      lease.release()
    }
  }

  const call = (worker: Worker, method: 'GET' | 'POST', path: string, payload?: unknown) =>
    deps.callWorker(worker, method, path, payload, deps.controlTimeoutMs)

  /** A control call on the instance's worker, wherever in the cluster it runs (started if needed). */
  async function control(t: Target, method: 'GET' | 'POST', path: string, payload?: unknown): Promise<ControlResult> {
    const remote = await deps.cluster?.remoteControl(t.instance.orgId, t.view.id, method, path, payload)
    return remote ?? withWorker(t, (w) => call(w, method, path, payload))
  }

  const stopLocal = (orgId: string, pluginId: string) => pool.stop(orgId, pluginId, 'replaced')

  /**
   * Brings the local worker (if any) in line with the stored instance: disabled or new credentials
   * restart it, new config reaches it through /config-update (a refusal restarts it too).
   */
  async function applyToWorker(before: PluginInstanceRow | undefined, after: PluginInstanceRow | undefined): Promise<void> {
    if (!after) return
    const { orgId, pluginId } = after
    const worker = await pool.settled(orgId, pluginId) // one starting now was spawned with the old instance
    if (!worker) return
    if (!after.enabled || !sameJson(before?.authState, after.authState)) return stopLocal(orgId, pluginId)
    if (sameJson(before?.config, after.config)) return
    const reply = await call(worker, 'POST', '/config-update', { config: plainOf(after).config }).catch(() => null)
    const parsed = reply && ConfigUpdateReply.safeParse(reply.body)
    if (!parsed?.success || !parsed.data.success) {
      log.warn({ orgId, pluginId }, 'config-update refused or failed; restarting the worker')
      await stopLocal(orgId, pluginId)
    }
  }

  return {
    target,
    pluginOrThrow,
    afterReady,
    metadataUnavailable,
    acquire: (t: Target, signal?: AbortSignal): Promise<Lease> => pool.acquire(specOf(t), signal),

    /**
     * Marks metadata stale; fetches right away when a worker of the plugin runs here (holding it like
     * a request, so the reaper cannot stop it mid-fetch), otherwise at the plugin's next start.
     */
    async refreshMetadata(pluginId: string): Promise<PluginView> {
      pluginOrThrow(pluginId)
      const stale = await metadata.markStale(pluginId)
      if (stale) registry.updateRow(stale)
      const running = pool.list().find((w) => w.pluginId === pluginId && w.state === 'ready')
      if (running) {
        const t = await target(running.orgId, pluginId, { requireEnabled: false })
        await withWorker(t, (worker) => fetchMetadataFrom(worker, t.view))
      }
      return pluginOrThrow(pluginId)
    },

    /**
     * Creates or updates an org's instance; a running worker learns new config via /config-update.
     * Secret fields are sealed before anything is stored; a masked value sent back keeps the stored one.
     */
    async updateInstance(
      orgId: string,
      pluginId: string,
      patch: { enabled?: boolean | undefined; config?: InstanceConfig | undefined },
    ): Promise<PluginInstanceRow> {
      const view = pluginOrThrow(pluginId)
      const ref = { orgId, pluginId }
      let config: { plain: InstanceConfig; stored: InstanceConfig } | undefined
      if (patch.config) {
        const current = await registry.instance(orgId, pluginId)
        const plain = unmaskConfig(secrets, ref, patch.config, current?.config)
        if (view.row.metadata) validateConfig(view.row.metadata.configSchema, plain)
        config = { plain, stored: sealForStorage(ref, view, plain) }
      }
      // A worker starting right now was spawned with the old config: it gets the new one once ready.
      const worker = config && patch.enabled !== false ? await pool.settled(orgId, pluginId) : undefined
      let restart = false
      if (config && worker) {
        const reply = await call(worker, 'POST', '/config-update', { config: config.plain }).catch((err: unknown) => {
          log.warn({ err, orgId, pluginId }, 'config-update failed; the worker will be restarted')
          return null
        })
        const parsed = reply && ConfigUpdateReply.safeParse(reply.body)
        if (parsed?.success && !parsed.data.success) {
          throw new GatewayError('CONFIG_INVALID', 422, parsed.data.error ?? 'the plugin rejected the config')
        }
        restart = !parsed?.success
      }
      const row = await registry.saveInstance(orgId, pluginId, {
        ...(patch.enabled !== undefined && { enabled: patch.enabled }),
        ...(config && { config: config.stored }),
      })
      if (!row.enabled || restart) await stopLocal(orgId, pluginId)
      await deps.cluster?.instanceChanged(orgId, pluginId)
      return row
    },

    /** Checks credentials with the worker's /validate-auth; stores them, sealed, only when valid. */
    async setAuth(orgId: string, pluginId: string, auth: AuthState): Promise<PluginInstanceRow> {
      const t = await target(orgId, pluginId, { requireEnabled: false })
      const methods = t.view.row.metadata?.authMethods
      if (methods && !methods.some((m) => m.id === auth.methodId)) {
        throw new GatewayError('AUTH_INVALID', 422, `plugin ${pluginId} has no auth method ${auth.methodId}`)
      }
      if (!secrets.hasKey) throw secretsUnavailable(`cannot store credentials for ${orgId}/${pluginId}`)
      const stored = sealAuth(secrets, { orgId, pluginId }, auth)
      const config = plainOf(t.instance).config
      // A disabled instance gets a worker only for this check: it must not outlive it.
      const reply = await control(t, 'POST', '/validate-auth', { config, authState: auth }).finally(async () => {
        if (!t.instance.enabled) await stopLocal(orgId, pluginId)
      })
      const parsed = ValidateAuthReply.safeParse(reply.body)
      if (!parsed.success) throw new GatewayError('UPSTREAM_ERROR', 502, 'worker gave a malformed /validate-auth answer')
      if (!parsed.data.valid) throw new GatewayError('AUTH_INVALID', 422, parsed.data.error ?? 'credentials were rejected')
      const row = await registry.saveInstance(orgId, pluginId, { authState: stored })
      // HAY_ORG_AUTH is read at start: the running worker restarts on its next request with the new credentials.
      await stopLocal(orgId, pluginId)
      await deps.cluster?.instanceChanged(orgId, pluginId)
      return row
    },

    /** Starts the worker where it belongs; returns it when that is this gateway. */
    async start(orgId: string, pluginId: string): Promise<Worker | null> {
      const t = await target(orgId, pluginId, { requireEnabled: true })
      if (await deps.cluster?.remoteControl(orgId, pluginId, 'GET', '/health', undefined)) return null
      return withWorker(t, async (w) => w)
    },

    /** Stops the worker wherever it runs; true when there was one. */
    async stop(orgId: string, pluginId: string): Promise<boolean> {
      pluginOrThrow(pluginId)
      if (await deps.cluster?.remoteStop(orgId, pluginId)) return true
      const wasRunning = pool.list().some((w) => w.orgId === orgId && w.pluginId === pluginId)
      await pool.stop(orgId, pluginId, 'admin')
      return wasRunning
    },

    /** A control call for a peer gateway that forwarded it here (this gateway owns the worker). */
    async localControl(orgId: string, pluginId: string, method: 'GET' | 'POST', path: string, payload: unknown) {
      const t = await target(orgId, pluginId, { requireEnabled: false })
      return withWorker(t, (w) => call(w, method, path, payload))
    },

    /** Another gateway changed this instance: reload it and apply the change to a local worker. */
    async instanceChangedElsewhere(orgId: string, pluginId: string): Promise<void> {
      const before = await registry.instance(orgId, pluginId)
      registry.forgetInstance(orgId, pluginId)
      await applyToWorker(before, await registry.instance(orgId, pluginId))
    },

    async listTools(orgId: string, pluginId: string): Promise<unknown> {
      const t = await target(orgId, pluginId, { requireEnabled: true })
      const reply = await control(t, 'GET', '/mcp/list-tools')
      return passThrough(reply)
    },

    async callTool(orgId: string, pluginId: string, toolName: string, args: unknown): Promise<unknown> {
      const t = await target(orgId, pluginId, { requireEnabled: true })
      const reply = await control(t, 'POST', '/mcp/call-tool', { toolName, arguments: args })
      return passThrough(reply)
    },
  }
}

export type GatewayService = ReturnType<typeof createGatewayService>

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

function passThrough(reply: ControlResult): unknown {
  if (reply.status === 404) throw new GatewayError('NOT_FOUND', 404, messageOf(reply.body) ?? 'not found on the worker')
  if (reply.status >= 400) throw new GatewayError('UPSTREAM_ERROR', 502, messageOf(reply.body) ?? `worker answered ${reply.status}`)
  return reply.body
}

function messageOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const b = body as { error?: unknown; message?: unknown }
  if (typeof b.error === 'string') return b.error
  if (typeof b.error === 'object' && b.error !== null && typeof (b.error as { message?: unknown }).message === 'string') {
    return (b.error as { message: string }).message
  }
  return typeof b.message === 'string' ? b.message : undefined
}
