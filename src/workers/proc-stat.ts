import { readFileSync } from 'node:fs'

/** What the gateway reads of a process in /proc/<pid>/stat (proc(5)). */
export interface ProcStat {
  pid: number
  /** One letter: R running, S sleeping, Z zombie, … */
  state: string
  ppid: number
  /**
   * When it started, in clock ticks since boot: with the pid it names one process, since a pid is
   * reused by another process only after its first holder ended.
   */
  startTime: number
}

/** The stat of pid; undefined when it is gone (or there is no /proc on this platform). */
export function readProcStat(pid: number): ProcStat | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined // gone, or no /proc on this platform
  }
  return parseProcStat(stat)
}

/** `pid (comm) state ppid … starttime …`; undefined when it is not that shape. */
function parseProcStat(stat: string): ProcStat | undefined {
  // comm may hold spaces and parentheses: the fields after it start after the last ')'.
  const close = stat.lastIndexOf(')')
  const pid = Number(stat.slice(0, stat.indexOf(' (')))
  const fields = stat.slice(close + 2).split(' ')
  const [state, ppid, startTime] = [fields[0], Number(fields[1]), Number(fields[19])] // fields 3, 4 and 22
  if (close < 0 || !state || ![pid, ppid, startTime].every(Number.isSafeInteger)) return undefined
  return { pid, state, ppid, startTime }
}

/**
 * True while pid is a live process (a zombie has ended) and, given startTime, the one that started
 * then, not another that reuses its pid.
 */
export function isRunning(pid: number, startTime?: number): boolean {
  const stat = readProcStat(pid)
  return stat !== undefined && stat.state !== 'Z' && (startTime === undefined || stat.startTime === startTime)
}
