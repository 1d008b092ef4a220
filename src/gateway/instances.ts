import { z } from 'zod'
import { fitsWorkerEnv, orgConfigJson } from '../contract/index.js'
import type { Cluster } from '../cluster/index.js'
import type { Logger } from '../core/index.js'
import { GatewayError } from '../core/index.js'
import type { AuthState, InstanceConfig, PluginInstanceRow } from '../db/index.js'
import type { PluginView, Registry } from '../registry/index.js'
import type { InstanceRef, SecretBox } from '../secrets/index.js'
import { isSecretField, sealAuth, sealConfig, secretsUnavailable, unmaskConfig } from '../secrets/index.js'
import type { Worker, WorkerPool } from '../workers/index.js'
import { validateConfig } from './config-validation.js'
import type { Targets } from './targets.js'
import type { WorkerControl } from './worker-control.js'
import type { WorkerSpecs } from './worker-specs.js'

export interface InstancesDeps {
  registry: Registry
  targets: Targets
  specs: WorkerSpecs
  pool: WorkerPool
  workers: WorkerControl
  /** Seals config secrets and credentials at rest; one without a key refuses writes that need sealing. */
  secrets: SecretBox
  log: Logger
  /** Several gateways on one database: the others hear of every change, and apply it to their workers. */
  cluster?: Pick<Cluster, 'instanceChanged'>
}

const ValidateAuthReply = z.object({ valid: z.boolean(), error: z.string().optional() })
const ConfigUpdateReply = z.object({ success: z.boolean(), error: z.string().optional() })

/** How a running worker took new config (POST /config-update, CONTRACT.md §3). */
type Pushed = { kind: 'applied' } | { kind: 'rejected'; error: string | undefined } | { kind: 'failed' }

/** A worker receives config and credentials in one environment variable each: what it cannot be started with is not stored. */
function refuseOverEnv(name: string, value: string, what: string): void {
  if (fitsWorkerEnv(name, value)) return
  throw new GatewayError(
    'CONFIG_TOO_LARGE',
    413,
    `the ${what} is ${Buffer.byteLength(value)} bytes as JSON: a worker receives it in ${name}, and Linux starts no process with an environment variable over 128 KiB`,
  )
}

/** An org's instances of plugins: enabling, config, credentials, and keeping running workers in line with them. */
export function createInstances(deps: InstancesDeps) {
  const { registry, targets, specs, pool, workers, secrets, log, cluster } = deps

  async function pushConfig(worker: Worker, config: InstanceConfig): Promise<Pushed> {
    const { orgId, pluginId } = worker
    const reply = await workers.call(worker, 'POST', '/config-update', { config }).catch((err: unknown) => {
      log.warn({ err, orgId, pluginId }, 'config-update failed')
      return null
    })
    const parsed = reply && ConfigUpdateReply.safeParse(reply.body)
    if (!parsed?.success) return { kind: 'failed' }
    return parsed.data.success ? { kind: 'applied' } : { kind: 'rejected', error: parsed.data.error }
  }

  const restart = (orgId: string, pluginId: string) => workers.stopLocal(orgId, pluginId, 'replaced')

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

  /**
   * Brings the local worker (if any) in line with the stored instance: disabled or new credentials
   * restart it, new config reaches it through /config-update (a refusal restarts it too).
   */
  async function applyToWorker(before: PluginInstanceRow | undefined, after: PluginInstanceRow | undefined): Promise<void> {
    if (!after) return
    const { orgId, pluginId } = after
    const worker = await pool.settled(orgId, pluginId) // one starting now was spawned with the old instance
    if (!worker) return
    if (!after.enabled || !sameJson(before?.authState, after.authState)) return restart(orgId, pluginId)
    if (sameJson(before?.config, after.config)) return
    if ((await pushConfig(worker, specs.plainOf(after).config)).kind !== 'applied') {
      log.warn({ orgId, pluginId }, 'config-update refused or failed; restarting the worker')
      await restart(orgId, pluginId)
    }
  }

  return {
    /**
     * Creates or updates an org's instance; a running worker learns new config via /config-update.
     * Secret fields are sealed before anything is stored; a masked value sent back keeps the stored one.
     */
    async updateInstance(
      orgId: string,
      pluginId: string,
      patch: { enabled?: boolean | undefined; config?: InstanceConfig | undefined },
    ): Promise<PluginInstanceRow> {
      const view = targets.plugin(pluginId)
      const ref = { orgId, pluginId }
      let config: { plain: InstanceConfig; stored: InstanceConfig } | undefined
      if (patch.config) {
        const current = await registry.instance(orgId, pluginId)
        const plain = unmaskConfig(secrets, ref, patch.config, current?.config)
        if (view.row.metadata) validateConfig(view.row.metadata.configSchema, plain)
        refuseOverEnv('HAY_ORG_CONFIG', orgConfigJson(orgId, plain), 'config')
        config = { plain, stored: sealForStorage(ref, view, plain) }
      }
      // A worker starting right now was spawned with the old config: it gets the new one once ready.
      const worker = config && patch.enabled !== false ? await pool.settled(orgId, pluginId) : undefined
      const pushed = config && worker ? await pushConfig(worker, config.plain) : undefined
      if (pushed?.kind === 'rejected') throw new GatewayError('CONFIG_INVALID', 422, pushed.error ?? 'the plugin rejected the config')
      const row = await registry.saveInstance(orgId, pluginId, {
        ...(patch.enabled !== undefined && { enabled: patch.enabled }),
        ...(config && { config: config.stored }),
      })
      if (!row.enabled || pushed?.kind === 'failed') await restart(orgId, pluginId)
      await cluster?.instanceChanged(orgId, pluginId)
      return row
    },

    /** Checks credentials with the worker's /validate-auth; stores them, sealed, only when valid. */
    async setAuth(orgId: string, pluginId: string, auth: AuthState): Promise<PluginInstanceRow> {
      const t = await targets.target(orgId, pluginId, { requireEnabled: false })
      const methods = t.view.row.metadata?.authMethods
      if (methods && !methods.some((m) => m.id === auth.methodId)) {
        throw new GatewayError('AUTH_INVALID', 422, `plugin ${pluginId} has no auth method ${auth.methodId}`)
      }
      if (!secrets.hasKey) throw secretsUnavailable(`cannot store credentials for ${orgId}/${pluginId}`)
      refuseOverEnv('HAY_ORG_AUTH', JSON.stringify(auth), 'credentials')
      const stored = sealAuth(secrets, { orgId, pluginId }, auth)
      const config = specs.plainOf(t.instance).config
      // A disabled instance gets a worker only for this check: it must not outlive it.
      const reply = await workers.control(t, 'POST', '/validate-auth', { config, authState: auth }).finally(async () => {
        if (!t.instance.enabled) await restart(orgId, pluginId)
      })
      if (reply.status < 200 || reply.status > 299) {
        throw new GatewayError('UPSTREAM_ERROR', 502, `worker answered ${reply.status} to POST /validate-auth`)
      }
      const parsed = ValidateAuthReply.safeParse(reply.body)
      if (!parsed.success) throw new GatewayError('UPSTREAM_ERROR', 502, 'worker gave a malformed /validate-auth answer')
      if (!parsed.data.valid) throw new GatewayError('AUTH_INVALID', 422, parsed.data.error ?? 'credentials were rejected')
      const row = await registry.saveInstance(orgId, pluginId, { authState: stored })
      // HAY_ORG_AUTH is read at start: the running worker restarts on its next request with the new credentials.
      await restart(orgId, pluginId)
      await cluster?.instanceChanged(orgId, pluginId)
      return row
    },

    /** Another gateway changed this instance: reload it and apply the change to a local worker. */
    async instanceChangedElsewhere(orgId: string, pluginId: string): Promise<void> {
      const before = await registry.instance(orgId, pluginId)
      registry.forgetInstance(orgId, pluginId)
      await applyToWorker(before, await registry.instance(orgId, pluginId))
    },
  }
}

export type Instances = ReturnType<typeof createInstances>

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)
