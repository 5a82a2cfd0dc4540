// v8.js - the V8 peer: times kernels.wasm's exports in Node (same rounds and
// iterations as driver.c); prints the same lines. Thread CPU time like the
// driver where Node has it (process.threadCpuUsage, Node >= 22), else wall.
'use strict';
const fs = require('fs');
const [, , file, roundsArg, scaleArg] = process.argv;
const rounds = Number(roundsArg || 5), scale = Number(scaleArg || 1);
const mod = new WebAssembly.Module(fs.readFileSync(file));
const inst = new WebAssembly.Instance(mod, {});
const cpu = process.threadCpuUsage
  ? () => { const u = process.threadCpuUsage(); return (u.user + u.system) / 1e6; }
  : () => Number(process.hrtime.bigint()) / 1e9;
const runs = [['sha256_run', 200], ['json_run', 4], ['match_run', 20]];
for (const [name, iters] of runs) {
  let best = Infinity, sum = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = cpu();
    sum = inst.exports[name](iters * scale) >>> 0;
    const t = cpu() - t0;
    if (t < best) best = t;
  }
  console.log(`${name} ${best.toFixed(6)} ${sum.toString(16).padStart(8, '0')}`);
}
