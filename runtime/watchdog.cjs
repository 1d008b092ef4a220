'use strict'
// Preloaded (`node --require`) into every node worker the gateway spawns other than our runner.
// Runners that do not watch their parent (Hay's runner ignores it, NOTES.md) would outlive a gateway
// that was SIGKILLed; this makes every such worker exit once it has lost its parent, whatever it runs.
// It watches the parent pid rather than an IPC channel: a channel costs a node process a few ms of
// its boot (Node sets it up before any user code), a timer nothing. A process whose parent died is
// re-parented (to init or a subreaper), so its ppid changes.
const parent = process.ppid
const CHECK_MS = 250
const timer = setInterval(() => {
  if (process.ppid === parent) return
  clearInterval(timer)
  // Give the runner's own SIGTERM handling a moment, then leave for sure.
  setTimeout(() => process.exit(0), 2000).unref()
  process.kill(process.pid, 'SIGTERM')
}, CHECK_MS)
// The timer must not keep a finished worker alive.
timer.unref()
