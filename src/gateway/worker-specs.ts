import type { AuthState, InstanceConfig, PluginInstanceRow } from '../db/index.js'
import type { SecretBox } from '../secrets/index.js'
import { openAuth, openConfig } from '../secrets/index.js'
import type { WorkerSpec } from '../workers/index.js'
import type { Target } from './targets.js'

/** An instance's config and credentials in plaintext: only worker specs and control calls see them. */
export interface PlainInstance {
  config: InstanceConfig
  authState: AuthState | null
}

export interface WorkerSpecs {
  /** What a worker of the target is started with. Built for a start only: it opens the instance's secrets. */
  specOf(t: Target): WorkerSpec
  plainOf(instance: PluginInstanceRow): PlainInstance
}

export function createWorkerSpecs(secrets: SecretBox): WorkerSpecs {
  // Opened once per stored row (rows are replaced, never mutated, on save).
  const opened = new WeakMap<PluginInstanceRow, PlainInstance>()

  function plainOf(instance: PluginInstanceRow): PlainInstance {
    let plain = opened.get(instance)
    if (!plain) {
      plain = { config: openConfig(secrets, instance, instance.config), authState: openAuth(secrets, instance, instance.authState) }
      opened.set(instance, plain)
    }
    return plain
  }

  return {
    plainOf,
    specOf({ view, instance }) {
      const plain = plainOf(instance)
      return {
        orgId: instance.orgId,
        pluginId: view.id,
        pluginDir: view.dir,
        entryPath: view.entryPath,
        sdkVersion: view.sdkVersion,
        checksum: view.checksum,
        envAllowList: view.envAllowList,
        permissions: view.manifest.permissions,
        config: plain.config,
        authState: plain.authState,
      }
    },
  }
}
