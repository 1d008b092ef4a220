import { readFileSync, realpathSync, type Stats, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { GatewayError } from '../../core/index.js'
import { runnerPackageDirs } from './read-roots.js'
import type { WorkerUserSettings } from './worker-users.js'

// Whether the workers' OS users (a root gateway's, README: Sandbox) can reach what they need, worked
// out from mode bits and ownership without becoming them: stat calls, no process. Workers run with no
// supplementary group (libuv drops them), so a file's group class applies only for their gid. POSIX
// ACLs are not read: a path reachable through an ACL alone is reported unreachable.

/** What a worker does with a path: traverse it (a directory), read it, or execute it. */
type Need = 'search' | 'read' | 'execute'

/** One path the users cannot pass. */
interface Block {
  path: string
  need: Need
  /** `0700`: the permission bits of path. */
  mode: string
  owner: string
}

const BIT: Record<Need, number> = { search: 1, read: 4, execute: 1 }

/**
 * A check of paths for users: the paths they cannot pass on the way to a path (its ancestors, searched)
 * and at it (for need), by the given path, else by its real path; none when they reach it or when it
 * does not exist (not a matter of rights). Directories' answers are kept for the check's life: the
 * paths of one check (a scan's plugins, the runner's files) share most of their ancestors.
 */
function createReach(users: WorkerUserSettings): (path: string, need: Need) => Block[] {
  const searched = new Map<string, Block | undefined>()
  const search = (dir: string) => {
    if (!searched.has(dir)) searched.set(dir, blockedAt(dir, 'search', users))
    return searched.get(dir)
  }
  return (path, need) => {
    let real: string
    try {
      real = realpathSync(path)
    } catch {
      return [] // missing: whoever needs it says so itself
    }
    for (const chain of new Set([path, real])) {
      const blocks = [...ancestors(chain).map(search), blockedAt(chain, need, users)].filter((b) => b !== undefined)
      if (blocks.length > 0) return blocks
    }
    return []
  }
}

/** Whether every uid of users has need's bit on path (a uid range: each of its uids must). */
function blockedAt(path: string, need: Need, users: WorkerUserSettings): Block | undefined {
  let stats: Stats
  try {
    stats = statSync(path)
  } catch {
    return undefined // gone meanwhile, or behind a link that leads nowhere: not a matter of rights
  }
  const { min, max } = users.uids
  // Every uid of the range but the owner falls in the same class: min, max and the owner stand for all.
  const uids = new Set([min, max, ...(stats.uid >= min && stats.uid <= max ? [stats.uid] : [])])
  const isAllowed = [...uids].every((uid) => {
    const shift = uid === stats.uid ? 6 : users.gid === stats.gid ? 3 : 0
    return ((stats.mode >> shift) & BIT[need]) !== 0
  })
  if (isAllowed) return undefined
  return { path, need, mode: (stats.mode & 0o7777).toString(8).padStart(4, '0'), owner: `${userName(stats.uid)}:${groupName(stats.gid)}` }
}

/** `/a/b/c` → `/`, `/a`, `/a/b`. */
function ancestors(path: string): string[] {
  const found: string[] = []
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    found.unshift(dir)
    if (dirname(dir) === dir) return found
  }
}

/** `nobody:nogroup (uid 65534, gid 65534)`, or `uids 2000-2099 (gid 2000)` for a range. */
function describeUsers(users: WorkerUserSettings): string {
  const { min, max } = users.uids
  if (min !== max) return `uids ${min}-${max} (gid ${users.gid})`
  return `${userName(min)}:${groupName(users.gid)} (uid ${min}, gid ${users.gid})`
}

/** `cannot search /root (mode 0700, owner root:root), read /root/a.js (mode 0600, owner root:root)` */
const describeBlocks = (blocks: readonly Block[]): string =>
  `cannot ${blocks.map((b) => `${b.need} ${b.path} (mode ${b.mode}, owner ${b.owner})`).join(', ')}`

/** What makes every block passable for everyone: `chmod o+x /root /root/p && chmod o+r /root/p/a.js`. */
function chmodFix(blocks: readonly Block[]): string {
  const searchable = blocks.filter((b) => b.need !== 'read').map((b) => b.path)
  const readable = blocks.filter((b) => b.need === 'read').map((b) => b.path)
  return [searchable, readable]
    .map((paths, i) => (paths.length > 0 ? `chmod o+${i === 0 ? 'x' : 'r'} ${paths.join(' ')}` : ''))
    .filter(Boolean)
    .join(' && ')
}

export interface RunnerReach {
  users: WorkerUserSettings | undefined
  runnerCommand: readonly string[]
  watchdogPath: string
  /** PATH, where a runner command that is a bare name is looked for. */
  path: string
}

/**
 * Refuses to start (RUNNER_UNREACHABLE) when the workers' users cannot reach what every worker needs:
 * node and the runner command, the runner's files, its package and the node_modules it resolves from,
 * the watchdog, the temp dir. Otherwise every start would fail, later and less clearly.
 */
export async function checkRunnerReach(deps: RunnerReach): Promise<void> {
  const { users } = deps
  if (!users) return
  const [command = process.execPath, ...args] = deps.runnerCommand
  const commandFile = resolveCommand(command, deps.path)
  const runnerFiles = args.filter(isFile) // as the sandbox finds them
  const needs: Array<[string, Need]> = [
    [process.execPath, 'execute'], // legacy v1 entries run on the gateway's node
    ...(commandFile ? [[commandFile, 'execute'] as [string, Need]] : []),
    ...runnerFiles.map((f): [string, Need] => [f, 'read']),
    ...(await runnerPackageDirs(runnerFiles)).map((d): [string, Need] => [d, 'search']),
    [deps.watchdogPath, 'read'],
    [tmpdir(), 'search'], // holds the workers' temp dirs
  ]
  const reach = createReach(users)
  for (const [path, need] of needs) {
    const blocks = reach(path, need)
    if (blocks.length === 0) continue
    const onTheWay = blocks.some((b) => b.path === path) ? '' : `, on the way to ${path}`
    throw new GatewayError(
      'RUNNER_UNREACHABLE',
      500,
      `workers run as ${describeUsers(users)}, which ${describeBlocks(blocks)}${onTheWay}: make it reachable (${chmodFix(blocks)}), ` +
        'set WORKER_UID/WORKER_GID to a user who can reach it, or set WORKER_SANDBOX=off for trusted plugins (README: Sandbox)',
    )
  }
}

export interface PluginPaths {
  dir: string
  entryPath: string
}

/**
 * A check of plugins for users: why their workers cannot start the plugin (its directory, manifest or
 * entry is out of their reach), or undefined. Use one per scan (its answers about directories are kept).
 */
export function createPluginReach(users: WorkerUserSettings | undefined): (plugin: PluginPaths) => string | undefined {
  if (!users) return () => undefined
  const reach = createReach(users)
  return (plugin) => {
    for (const [path, need] of [
      [join(plugin.dir, 'package.json'), 'read'],
      [plugin.entryPath, 'read'],
    ] as const) {
      const blocks = reach(path, need)
      if (blocks.length > 0) {
        return `its workers run as ${describeUsers(users)}, which ${describeBlocks(blocks)}: make it reachable (${chmodFix(blocks)}) or set WORKER_UID/WORKER_GID to a user who can`
      }
    }
    return undefined
  }
}

/** The file a command runs: itself when it is a path, else the first match on PATH; undefined when not found. */
function resolveCommand(command: string, path: string): string | undefined {
  if (command.includes('/')) return command
  for (const dir of path.split(delimiter).filter(Boolean)) {
    if (isFile(join(dir, command))) return join(dir, command)
  }
  return undefined // not found: its spawn fails with ENOENT, which says so itself
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

const userName = (uid: number) => nameIn('/etc/passwd', uid)
const groupName = (gid: number) => nameIn('/etc/group', gid)

/** The name of id in a passwd-format file (`name:x:id:…`), else the id itself. */
function nameIn(file: string, id: number): string {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [name, , field] = line.split(':')
      if (name && field && Number(field) === id) return name
    }
  } catch {
    // No such file (a minimal container): the number says it.
  }
  return String(id)
}
