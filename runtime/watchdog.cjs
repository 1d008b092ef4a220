'use strict'
// Preloaded (`node --require`) into every node worker the gateway spawns. Runners that do not watch
// their parent (Hay's runner ignores IPC disconnect, NOTES.md) would outlive a gateway that was
// SIGKILLed; this makes every worker exit when the gateway's IPC channel closes, whatever it runs.
if (typeof process.send === 'function' && process.channel) {
  process.once('disconnect', () => {
    // Give the runner's own SIGTERM handling a moment, then leave for sure.
    setTimeout(() => process.exit(0), 2000).unref()
    process.kill(process.pid, 'SIGTERM')
  })
  // The channel must not keep a finished worker alive.
  process.channel.unref()
}
