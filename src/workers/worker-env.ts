import { orgConfigJson } from '../contract/index.js'
import type { WorkerSpec } from './types.js'

// CONTRACT.md §2: a worker sees the minimal base, its org config/auth, and exactly the host
// variables its manifest allow-lists. Nothing else of the gateway's environment leaks.
export function buildWorkerEnv(
  spec: WorkerSpec,
  baseEnv: Readonly<Record<string, string>>,
  hostEnv: Readonly<Record<string, string>>,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = { ...baseEnv }
  for (const name of spec.envAllowList) {
    const value = hostEnv[name]
    if (value !== undefined) env[name] = value
  }
  env.HAY_ORG_CONFIG = orgConfigJson(spec.orgId, spec.config)
  if (spec.authState) env.HAY_ORG_AUTH = JSON.stringify(spec.authState)
  return Object.assign(env, extra)
}

// Read by Node (or libuv) only while the process boots: NODE_OPTIONS, NODE_EXTRA_CA_CERTS,
// UV_THREADPOOL_SIZE… NODE_ENV is not one of them; it is read by code, at any time.
const BOOT_TIME_ENV = /^(NODE_|UV_)/

/**
 * True when the worker would get a variable Node only reads at boot. A prewarmed runner booted
 * without it, so such a worker is spawned fresh, or it would not be the process a spawn makes.
 */
export function needsOwnBoot(spec: WorkerSpec, hostEnv: Readonly<Record<string, string>>): boolean {
  return spec.envAllowList.some((name) => name !== 'NODE_ENV' && BOOT_TIME_ENV.test(name) && hostEnv[name] !== undefined)
}
