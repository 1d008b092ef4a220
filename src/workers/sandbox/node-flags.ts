import type { WorkerPermission } from '../../contract/index.js'

// Node's flag for each manifest permission (README: Sandbox).
const PERMISSION_FLAGS: Record<WorkerPermission, string> = {
  'child-process': '--allow-child-process',
  'worker-threads': '--allow-worker',
  'native-addons': '--allow-addons',
  wasi: '--allow-wasi',
}

export interface PermissionSet {
  readPaths: readonly string[]
  writePaths: readonly string[]
  permissions: readonly WorkerPermission[]
}

/**
 * Node's permission-model flags for a process of nodeVersion (`v20.20.2`). Node 20 and Node 22 before
 * 22.13 spell the switch `--experimental-permission` and warn about it on stderr at every start, so the
 * warning is turned off for that process only; 22.13+ and 23.5+ spell it `--permission` (24 knows only
 * that) and do not warn. Several paths are one flag each on all of them: a comma no longer separates
 * paths (it is part of the path).
 */
export function permissionFlags(set: PermissionSet, nodeVersion: string): string[] {
  const isStable = hasStablePermissionFlag(nodeVersion)
  return [
    ...(isStable ? ['--permission'] : ['--experimental-permission', '--disable-warning=ExperimentalWarning']),
    ...distinct(set.readPaths).map((p) => `--allow-fs-read=${p}`),
    ...distinct(set.writePaths).map((p) => `--allow-fs-write=${p}`),
    ...set.permissions.map((p) => PERMISSION_FLAGS[p]),
  ]
}

// Node 20 aborts (an assertion in its path tree) when one path is allowed twice, `/a` and `/a/` included.
const distinct = (paths: readonly string[]) => [...new Set(paths.map((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p)))]

function hasStablePermissionFlag(nodeVersion: string): boolean {
  const [major = 0, minor = 0] = nodeVersion.replace(/^v/, '').split('.').map(Number)
  return major >= 24 || (major === 23 && minor >= 5) || (major === 22 && minor >= 13)
}

/**
 * flags as a NODE_OPTIONS value: each one double-quoted (Node's NODE_OPTIONS parser takes quoted
 * arguments with backslash escapes), so paths with spaces survive.
 */
export const asNodeOptions = (flags: readonly string[]): string => flags.map((f) => `"${f.replace(/["\\]/g, '\\$&')}"`).join(' ')
