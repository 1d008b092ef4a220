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
  env.HAY_ORG_CONFIG = JSON.stringify({ org: { id: spec.orgId }, config: spec.config })
  if (spec.authState) env.HAY_ORG_AUTH = JSON.stringify(spec.authState)
  return Object.assign(env, extra)
}
