import type { ChildProcess } from 'node:child_process'
import type { Readable } from 'node:stream'
import type { Clock, Logger } from '../core/index.js'

// Enough for the reason a worker died: Node 22+ follows a fatal error (out of memory) with a native
// stack of ~2–4 KB, which a 2 KB tail kept instead of the error line.
const STDERR_TAIL_BYTES = 8192

/**
 * What the gateway does with one worker's stdout and stderr is bounded per window, whatever the
 * worker writes: at most OUTPUT_BYTES_PER_WINDOW are read (past it the pipes are left unread until
 * the window ends, so a flood fills its pipe and waits in the worker's own writes, not in the
 * gateway's event loop), and at most LOGGED_LINES_PER_WINDOW lines are logged (the rest are counted
 * and reported as one `worker output dropped`).
 */
export const OUTPUT_WINDOW_MS = 1_000
export const OUTPUT_BYTES_PER_WINDOW = 4 * 1024 * 1024 // ~30k log lines a second: above what one worker serves
export const LOGGED_LINES_PER_WINDOW = 100
const MAX_LOGGED_LINE_BYTES = 1024

const NEWLINE = 0x0a

type Stream = 'stdout' | 'stderr'

/**
 * Whom a process's lines are logged as. A prewarmed runner is spawned before it has an (org, plugin):
 * once it becomes a worker it is pointed at that worker's logger, as a fresh spawn's would be.
 */
export interface LogTarget {
  log: Logger
}

/** Reads a worker's output within its budget, logged to target.log; returns its stderr's tail (for why it died). */
export function captureOutput(child: ChildProcess, clock: Clock, target: LogTarget): () => string {
  const streams = [child.stdout, child.stderr].filter((s): s is Readable => s !== null)
  let tail: Buffer = Buffer.alloc(0)
  let windowStartMs = clock.now()
  let readBytes = 0
  let loggedLines = 0
  let droppedLines = 0
  let hasWarned = false
  let cancelResume: (() => void) | undefined
  // A line cut by a chunk's end, per stream: only its first MAX_LOGGED_LINE_BYTES are kept.
  const partial = new Map<Stream, Buffer>()

  const endWindow = () => {
    if (droppedLines > 0) target.log.debug({ droppedLines }, 'worker output dropped')
    windowStartMs = clock.now()
    readBytes = 0
    loggedLines = 0
    droppedLines = 0
  }
  const resume = () => {
    cancelResume?.()
    cancelResume = undefined
    endWindow()
    for (const s of streams) s.resume()
  }
  const logLine = (stream: Stream, line: Buffer) => {
    if (loggedLines >= LOGGED_LINES_PER_WINDOW) {
      droppedLines++
      return
    }
    loggedLines++
    target.log.debug({ stream, line: line.toString('utf8', 0, MAX_LOGGED_LINE_BYTES) }, 'worker output')
  }
  const logLines = (stream: Stream, chunk: Buffer) => {
    let start = 0
    for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      const head = partial.get(stream)
      logLine(
        stream,
        head ? Buffer.concat([head, chunk.subarray(start, Math.min(end, start + MAX_LOGGED_LINE_BYTES))]) : chunk.subarray(start, end),
      )
      partial.delete(stream)
      start = end + 1
    }
    if (start < chunk.length) {
      const head = partial.get(stream) ?? Buffer.alloc(0)
      if (head.length < MAX_LOGGED_LINE_BYTES) {
        // Copied: a slice would keep the whole chunk alive.
        partial.set(stream, Buffer.concat([head, chunk.subarray(start, start + MAX_LOGGED_LINE_BYTES - head.length)]))
      }
    }
  }
  const onData = (stream: Stream, chunk: Buffer) => {
    if (clock.now() - windowStartMs >= OUTPUT_WINDOW_MS) endWindow()
    readBytes += chunk.length
    if (stream === 'stderr') tail = keepTail(tail, chunk)
    if (target.log.isLevelEnabled?.('debug') !== false) logLines(stream, chunk)
    if (readBytes >= OUTPUT_BYTES_PER_WINDOW && cancelResume === undefined) {
      for (const s of streams) s.pause()
      cancelResume = clock.setTimer(Math.max(0, windowStartMs + OUTPUT_WINDOW_MS - clock.now()), resume)
      if (!hasWarned)
        target.log.warn(
          { bytesPerWindow: OUTPUT_BYTES_PER_WINDOW, windowMs: OUTPUT_WINDOW_MS },
          'worker writes output faster than the gateway reads it; slowing it',
        )
      hasWarned = true
    }
  }

  // Raw bytes: nothing is decoded but the lines logged and the tail when asked for.
  child.stdout?.on('data', (chunk: Buffer) => onData('stdout', chunk))
  child.stderr?.on('data', (chunk: Buffer) => onData('stderr', chunk))
  // What the worker wrote last (why it died) is still in its pipes: one more window's worth is read at once.
  child.once('exit', () => {
    if (cancelResume) resume()
  })
  child.once('close', () => {
    cancelResume?.()
    for (const [stream, line] of partial) logLine(stream, line)
    endWindow()
  })
  return () => tail.toString('utf8').trim()
}

function keepTail(tail: Buffer, chunk: Buffer): Buffer {
  if (chunk.length >= STDERR_TAIL_BYTES) return Buffer.from(chunk.subarray(-STDERR_TAIL_BYTES))
  return Buffer.concat([tail.subarray(Math.max(0, tail.length + chunk.length - STDERR_TAIL_BYTES)), chunk])
}
