// Least privilege for workers (DESIGN.md: worker lifecycle; README: Sandbox): Node's permission
// model (reads: the plugin's code and what the runner resolves; writes: a temp dir of its own; child
// processes, worker threads, addons and WASI only as its manifest asks), a user of its own when the
// gateway runs as root, and an optional CPU-time limit.
import { execFileSync } from 'node:child_process'
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, delimiter, isAbsolute, join } from 'node:path'
import type { WorkerPermission } from '../../contract/index.js'
import type { Logger } from '../../core/index.js'
import { GatewayError } from '../../core/index.js'
import type { PrewarmPolicy } from '../prewarm.js'
import { isRunning, readProcStat } from '../proc-stat.js'
import { asNodeOptions, permissionFlags } from './node-flags.js'
import { createPluginReach } from './reach.js'
import { readRoots } from './read-roots.js'
import { createWorkerUsers, type WorkerUser, type WorkerUserSettings } from './worker-users.js'

export interface SandboxSettings {
  /** WORKER_SANDBOX: off runs workers with the gateway's own rights (trusted plugins only). */
  enabled: boolean
  /** Set when the gateway runs as root: workers run as these users. */
  users?: WorkerUserSettings | undefined
  /** RLIMIT_CPU per worker process, in seconds of CPU time. */
  cpuSeconds?: number | undefined
  /** PATH, where prlimit is looked for. */
  path: string
}

export interface SandboxDeps {
  settings: SandboxSettings
  runnerCommand: readonly string[]
  /** Preloaded into other runners; readable by every worker. */
  watchdogPath: string
  /** Files no worker may read, whatever its plugin's directory holds (the database, the key file). */
  protectedPaths: readonly string[]
  /** PLUGINS_DIR: a plugin never reads another plugin's directory, even one linked as a package. */
  pluginRoots: readonly string[]
  log: Logger
}

/** What every worker of one plugin may read and do; a prewarmed runner serves workers of its policy only. */
export interface Policy extends PrewarmPolicy {
  /** The plugin whose workers it confines; undefined for the one policy of every worker (sandbox off). */
  pluginId: string | undefined
  readPaths: readonly string[]
  permissions: readonly WorkerPermission[]
}

/** A command line: node flags go between a node command and its arguments. */
export interface CommandLine {
  command: string
  nodeFlags: string[]
  args: string[]
}

/** One process as the sandbox starts it. */
export interface Confined {
  command: [string, string[]]
  env: Record<string, string>
  user: WorkerUser | undefined
  /** After the process exited: removes its temp dir, frees its user. */
  release(): Promise<void>
}

export interface Sandbox {
  /** The policy of the plugin in pluginDir; refused (WORKER_START_FAILED) when it cannot be confined or reached. */
  policyOf(spec: {
    pluginId: string
    pluginDir: string
    entryPath: string
    sdkVersion: 'v1' | 'v2'
    permissions: readonly WorkerPermission[]
  }): Promise<Policy>
  /**
   * Forgets the policy of pluginId (its directory changed): the next start works it out again, as a
   * policy of another key, so no prewarmed runner booted under the old one serves it.
   */
  forget(pluginId: string): void
  /** The one policy of every worker when the sandbox is off, so prewarmed runners serve any plugin; else none. */
  readonly anyPlugin: Policy | undefined
  /** Starts one process of policy: its node flags, env, user, temp dir (its TMPDIR) and CPU limit. */
  confine(policy: Policy, line: CommandLine, env: Record<string, string>): Confined
  /**
   * confine(), but when every worker uid is in use, waits for the next one a process of this sandbox
   * gives back and takes it over (a start that made room by retiring a worker), until signal aborts.
   */
  confineWhenFreed(policy: Policy, line: CommandLine, env: Record<string, string>, signal: AbortSignal): Promise<Confined>
  /** Removes the temp dirs' root. Call after every process has exited. */
  close(): Promise<void>
}

export { checkRunnerReach, createPluginReach } from './reach.js'
export { createWorkerUsers } from './worker-users.js'

const TEMP_ROOT_PREFIX = 'plugin-gateway-workers-'
const UNCONFINED: Policy = { key: 'unconfined', pluginId: undefined, readPaths: [], permissions: [] }

/** True for a command that is a node binary: node flags can go on its command line. */
export const isNodeCommand = (command: string): boolean => command === process.execPath || basename(command) === 'node'

export function createSandbox(deps: SandboxDeps): Sandbox {
  const { settings, log } = deps
  const prlimit = settings.cpuSeconds === undefined ? undefined : findExecutable('prlimit', settings.path)
  if (settings.cpuSeconds !== undefined && !prlimit) {
    throw new GatewayError('CONFIG_INVALID', 500, 'WORKER_CPU_SECONDS needs prlimit (util-linux) on PATH')
  }
  const cpuLimit = (line: [string, string[]]): [string, string[]] =>
    prlimit && settings.cpuSeconds !== undefined
      ? [prlimit, [`--cpu=${settings.cpuSeconds}:${settings.cpuSeconds + 1}`, line[0], ...line[1]]] // SIGXCPU, a second later SIGKILL
      : line

  if (!settings.enabled) {
    log.warn('WORKER_SANDBOX=off: workers run with the gateway’s own user and rights, and read and write what it can')
    const confine = (_policy: Policy, line: CommandLine, env: Record<string, string>): Confined => ({
      command: cpuLimit([line.command, [...line.nodeFlags, ...line.args]]),
      env,
      user: undefined,
      release: async () => {},
    })
    return {
      policyOf: async () => UNCONFINED,
      forget: () => {},
      anyPlugin: UNCONFINED,
      confine,
      confineWhenFreed: async (policy, line, env) => confine(policy, line, env),
      close: async () => {},
    }
  }

  const killCommand = settings.users && findExecutable('kill', settings.path)
  if (settings.users && !killCommand) {
    log.warn('no kill on PATH (procps): a process a worker forks as it exits can outlive it into the next worker of its uid')
  }
  const users = settings.users && createWorkerUsers(settings.users, { killCommand })
  if (settings.users) {
    // The database and key files are the gateway's alone: a worker running as another user must not read them.
    for (const file of deps.protectedPaths) if (existsSync(file)) chmodSync(file, statSync(file).mode & 0o700)
  }
  removeStaleTempRoots()
  // Traversable by the workers' users, not listable: each worker knows only its own directory. Named
  // after this gateway's pid and start time, which tell a later gateway whether it still runs.
  const tempRoot = mkdtempSync(join(tmpdir(), `${TEMP_ROOT_PREFIX}${process.pid}-${readProcStat(process.pid)?.startTime ?? 0}-`))
  chmodSync(tempRoot, 0o711)
  let nextDir = 0
  // Releases under way: close() waits for them, so what a worker left under its uid is killed before
  // the temp dirs' root is removed, and its uid is given back before the gateway exits.
  const releasing = new Set<Promise<void>>()
  const runnerFiles = deps.runnerCommand.slice(1).filter(isFile)
  const runnerNode = nodeVersionOf(deps.runnerCommand[0] ?? process.execPath)
  const policies = new Map<string, Promise<Policy>>()
  let computed = 0
  log.info(
    { uids: settings.users?.uids, gid: settings.users?.gid, cpuSeconds: settings.cpuSeconds, tempRoot },
    'workers run sandboxed (Node permission model)',
  )

  async function computePolicy(spec: Parameters<Sandbox['policyOf']>[0]): Promise<Policy> {
    // The catalog scan found it reachable; its rights may have changed since.
    const unreachable = createPluginReach(settings.users)({ dir: spec.pluginDir, entryPath: spec.entryPath })
    if (unreachable) throw new GatewayError('WORKER_START_FAILED', 503, `worker for ${spec.pluginId} cannot start: ${unreachable}`)
    const roots = await readRoots(spec.pluginDir, spec.sdkVersion === 'v2' ? runnerFiles : [], {
      protectedPaths: deps.protectedPaths,
      pluginRoots: deps.pluginRoots,
    })
    if (!roots.ok) throw new GatewayError('WORKER_START_FAILED', 503, `worker for ${spec.pluginId} cannot be sandboxed: ${roots.reason}`)
    const readPaths = [...roots.paths, deps.watchdogPath]
    const permissions = [...spec.permissions].sort()
    log.info({ pluginId: spec.pluginId, readPaths, permissions }, 'worker sandbox policy')
    // Numbered: a policy worked out again (after forget) never shares its key with the one it replaces.
    const key = JSON.stringify([computed++, spec.pluginDir, spec.sdkVersion, permissions])
    return { key, pluginId: spec.pluginId, readPaths, permissions }
  }

  return {
    anyPlugin: undefined,
    policyOf(spec) {
      const cacheKey = `${spec.pluginId}\0${spec.pluginDir}\0${spec.sdkVersion}\0${spec.permissions.join(',')}`
      const known = policies.get(cacheKey)
      if (known) return known
      const policy = computePolicy(spec)
      policies.set(cacheKey, policy)
      // A refusal is worked out again at the next start (the operator may have fixed the directory),
      // unless the entry went to a newer computation meanwhile (forget).
      policy.catch(() => {
        if (policies.get(cacheKey) === policy) policies.delete(cacheKey)
      })
      return policy
    },
    forget(pluginId) {
      for (const cacheKey of policies.keys()) if (cacheKey.startsWith(`${pluginId}\0`)) policies.delete(cacheKey)
    },
    confine: (policy, line, env) => confineAs(users?.take(), policy, line, env),
    confineWhenFreed: async (policy, line, env, signal) => confineAs(await users?.takeNextGiven(signal), policy, line, env),
    async close() {
      await Promise.allSettled(releasing)
      await rm(tempRoot, { recursive: true, force: true })
    },
  }

  function confineAs(user: WorkerUser | undefined, policy: Policy, line: CommandLine, env: Record<string, string>): Confined {
    const tempDir = join(tempRoot, String(nextDir++))
    try {
      mkdirSync(tempDir, { mode: 0o700 })
      if (user) chownSync(tempDir, user.uid, user.gid)
    } catch (err) {
      if (user) void users?.give(user)
      throw err
    }
    const nodeVersion = line.command === process.execPath ? process.version : runnerNode
    const flags = permissionFlags(
      { readPaths: [...policy.readPaths, tempDir], writePaths: [tempDir], permissions: policy.permissions },
      nodeVersion,
    )
    const confinedEnv: Record<string, string> = { ...env, TMPDIR: tempDir }
    const isNode = isNodeCommand(line.command)
    // Through NODE_OPTIONS the policy reaches a node that a wrapper command starts, and the node
    // processes a worker allowed child processes starts (Node 22+ does that itself; 20 does not).
    // Never on the command line as well: Node 20 aborts on a path allowed twice.
    const viaEnv = !isNode || policy.permissions.includes('child-process')
    // What can leave processes of its uid behind: a wrapper command, a node allowed child processes or
    // native code (without those permissions Node refuses spawns, process.binding() included).
    const couldFork = viaEnv || policy.permissions.includes('native-addons')
    if (viaEnv) confinedEnv.NODE_OPTIONS = [asNodeOptions(flags), env.NODE_OPTIONS].filter(Boolean).join(' ')
    return {
      command: cpuLimit([line.command, [...(isNode ? [...(viaEnv ? [] : flags), ...line.nodeFlags] : []), ...line.args]]),
      env: confinedEnv,
      user,
      release() {
        // rm walks the dir by path: a process of the worker's uid still running could swap a directory
        // in it for a link out while root walks it. With a uid of its own, nothing of it is left then.
        const removeTempDir = () => rm(tempDir, { recursive: true, force: true })
        const released = user && users ? users.give(user, removeTempDir, couldFork) : removeTempDir()
        releasing.add(released)
        return released.finally(() => releasing.delete(released))
      },
    }
  }
}

// `<prefix><pid>-<start time>-<random>`; before start times were recorded, `<prefix><pid>-<random>`.
const TEMP_ROOT_NAME = new RegExp(`^${TEMP_ROOT_PREFIX}(\\d+)-(?:(\\d+)-)?[A-Za-z0-9]+$`)

/**
 * A gateway that was killed (SIGKILL) could not remove its workers' temp dirs: the next one removes
 * the roots of gateways no longer running. Their workers have left by then (IPC disconnect, watchdog).
 * A name is no proof: anyone may create one in the temp dir, and a dead gateway's pid may have gone to
 * another process. Only a directory (never a link) of the gateway's user that no one else may write
 * to is removed, when no process runs with the pid and start time it names (an old name has no start
 * time: its pid alone is checked, which may keep it).
 */
function removeStaleTempRoots(): void {
  // Without /proc (another platform) a live gateway cannot be told from a dead one: remove nothing.
  if (readProcStat(process.pid) === undefined) return
  const uid = process.getuid?.()
  for (const name of readdirSync(tmpdir())) {
    const match = TEMP_ROOT_NAME.exec(name)
    if (!match) continue
    const path = join(tmpdir(), name)
    const stats = lstatSync(path, { throwIfNoEntry: false })
    // In a sticky temp dir (/tmp) only its owner may then swap it for something else.
    if (!stats?.isDirectory() || stats.uid !== uid || (stats.mode & 0o022) !== 0) continue
    const startTime = match[2] === undefined ? undefined : Number(match[2])
    if (!isRunning(Number(match[1]), startTime)) rmSync(path, { recursive: true, force: true })
  }
}

/** `v22.13.0` for a node binary; the gateway's own version for itself or any other command. */
function nodeVersionOf(command: string): string {
  if (command === process.execPath || !isNodeCommand(command)) return process.version
  try {
    return execFileSync(command, ['--version'], { encoding: 'utf8', timeout: 5_000 }).trim()
  } catch {
    return process.version // it will fail to start its workers, which says more than failing here
  }
}

function isFile(path: string): boolean {
  try {
    return isAbsolute(path) && statSync(path).isFile()
  } catch {
    return false
  }
}

function findExecutable(name: string, path: string): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // Not in this directory.
    }
  }
  return undefined
}
