import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GatewayError } from '../../core/index.js'
import { readProcStat } from '../proc-stat.js'

// Claims of worker uids shared by every gateway of the host (a cluster on one machine, parallel test
// runs): give() kills every process of a uid, so two gateways must never hand out the same uid at once.
//
// Each uid has a directory of numbered entries; the highest number says who has the uid: `<n>`, a
// symbolic link whose target names its holder (`<pid>-<start time>`), or `<n>.free`, released. To
// claim, a gateway creates `<n+1>` (symlink() fails when it exists, so one claimant wins each number)
// when the highest entry is free or its holder is dead, then checks that no higher number appeared
// (a slower claimant may have created a number the winner of a higher one had already removed), and
// removes the lower ones. Numbers only grow while a uid is held, so a dead holder's claim is taken
// over without deleting it first: no two claimants can both think they won.

/** `/run` (tmpfs, root's): gone at reboot with the pids its claims name; else the OS temp dir. */
export const CLAIMS_DIR = join(existsSync('/run') ? '/run' : tmpdir(), 'plugin-gateway-worker-uids')

export interface UidClaims {
  /**
   * Claims uid for this gateway; false when a live holder has it. isVacant is asked (before the claim) when
   * the uid was not released cleanly, by a gateway that made sure nothing of it ran: its holder died,
   * or it was never claimed since boot.
   */
  claim(uid: number, isVacant: () => boolean): boolean
  /** Gives up this gateway's claim of uid. */
  release(uid: number): void
}

export function createUidClaims(dir = CLAIMS_DIR): UidClaims {
  openClaimsDir(dir)
  const me = holderOf(process.pid)
  if (me === undefined) throw new GatewayError('CONFIG_INVALID', 500, 'worker uids need /proc to tell live gateways from dead ones')
  const held = new Map<number, number>()
  return {
    claim(uid, isVacant) {
      const uidDir = join(dir, String(uid))
      mkdirSync(uidDir, { recursive: true, mode: 0o700 })
      const top = highest(uidDir)
      if (top?.holder !== undefined && isLive(top.holder)) return false
      const isReleased = top !== undefined && top.holder === undefined
      if (!isReleased && !isVacant()) return false
      const number = top === undefined ? 0 : top.number + 1
      try {
        symlinkSync(me, join(uidDir, String(number)))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false // another claimant won this number
        throw err
      }
      if (highest(uidDir)?.number !== number) {
        rmSync(join(uidDir, String(number)), { force: true })
        return false
      }
      for (const entry of entries(uidDir)) if (entry.number < number) rmSync(join(uidDir, entry.name), { force: true })
      held.set(uid, number)
      return true
    },
    release(uid) {
      const number = held.get(uid)
      if (number === undefined) return
      held.delete(uid)
      const claim = join(dir, String(uid), String(number))
      renameSync(claim, `${claim}.free`)
    },
  }
}

/** Root's alone: a worker must not plant or remove claims. */
function openClaimsDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', 500, `cannot make ${dir} (worker uid claims): ${(err as Error).message}`, { cause: err })
  }
  const stats = lstatSync(dir)
  if (!stats.isDirectory() || stats.uid !== process.getuid?.() || (stats.mode & 0o077) !== 0) {
    throw new GatewayError('CONFIG_INVALID', 500, `${dir} (worker uid claims) must be a directory of the gateway's user, mode 0700`)
  }
}

interface Entry {
  name: string
  number: number
  /** `<pid>-<start time>`; undefined when released. */
  holder: string | undefined
}

function entries(uidDir: string): Entry[] {
  const found: Entry[] = []
  for (const name of readdirSync(uidDir)) {
    const match = /^(\d+)(\.free)?$/.exec(name)
    if (!match) continue
    let holder: string | undefined
    if (!match[2]) {
      try {
        holder = readlinkSync(join(uidDir, name))
      } catch {
        continue // removed meanwhile by the winner of a higher number
      }
    }
    found.push({ name, number: Number(match[1]), holder })
  }
  return found
}

function highest(uidDir: string): Entry | undefined {
  return entries(uidDir).reduce<Entry | undefined>((top, e) => (top === undefined || e.number > top.number ? e : top), undefined)
}

/** A pid alone could name a new process that reuses a dead holder's pid: its start time tells them apart. */
function isLive(holder: string): boolean {
  const pid = Number(holder.split('-')[0])
  return Number.isInteger(pid) && pid > 0 && holderOf(pid) === holder
}

/** `<pid>-<start time in clock ticks since boot>`; undefined when it is gone. */
function holderOf(pid: number): string | undefined {
  const stat = readProcStat(pid)
  return stat && `${pid}-${stat.startTime}`
}
