'use strict'
// import() for the runner bundle, as sdk/dist/runner-import.cjs. runner.cjs compiles the bundle with
// vm.Script and its code cache, and code V8 took from a code cache has no dynamic-import callback
// (Node 20 to 24: "A dynamic import callback was not specified"). Node's own CommonJS loader compiles
// this file, and its import() works.
/**
 * @param {string} specifier
 * @returns {Promise<unknown>}
 */
module.exports = (specifier) => import(specifier)
