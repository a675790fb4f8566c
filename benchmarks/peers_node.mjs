// The peer side of benchmarks/peers.py: one workload run on aws-local-stepfunctions.
//
// Usage: node peers_node.mjs CACHE_DIR < spec.json
//
// CACHE_DIR is the folder npm installed aws-local-stepfunctions into (it holds node_modules/).
// The spec on stdin is the one benchmarks/peers_statemill.py reads for the Statemill side:
//   {"definition": ASL, "input": JSON, "executions": N, "in_flight": K, "warmup": W,
//    "transitions_per_execution": T}
// `in_flight` client loops each start an execution (StateMachine.run) and await its result,
// then start the next, until N have run (after W untimed warm-up executions run the same way).
// No run option is passed: no wait-time override, no task override, no validation switched off.
//
// Prints one line of JSON on stdout: seconds (first start to last end), started_seconds (until
// the last start returned), executions, transitions, failures, wrong_outputs, min_duration_s
// (the shortest run-to-result time: a Wait of 1 s must take at least 1 s), peak_rss_bytes
// (process.resourceUsage().maxRSS), and the package version.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';

const cacheDir = process.argv[2];
if (!cacheDir) {
  process.stderr.write('usage: node peers_node.mjs CACHE_DIR < spec.json\n');
  process.exit(2);
}
const require = createRequire(join(cacheDir, 'package.json'));
const { StateMachine } = require('aws-local-stepfunctions');
const version = JSON.parse(
  readFileSync(join(cacheDir, 'node_modules', 'aws-local-stepfunctions', 'package.json'), 'utf8'),
).version;

const spec = JSON.parse(readFileSync(0, 'utf8'));
const machine = new StateMachine(spec.definition);

function inputOf(index) {
  return { ...spec.input, i: index };
}

function expectedOutput(input) {
  return spec.expect === 'items' ? input.items : input;
}

async function drive(count, inFlight, tally) {
  let next = 0;
  let started = 0;
  let lastStart = 0;
  const began = performance.now();
  async function client() {
    while (next < count) {
      const index = next;
      next += 1;
      const input = inputOf(index);
      const t0 = performance.now();
      const execution = machine.run(input);
      started += 1;
      if (started === count) {
        lastStart = performance.now();
      }
      try {
        const output = await execution.result;
        const duration = (performance.now() - t0) / 1000;
        if (tally) {
          tally.minDuration = Math.min(tally.minDuration, duration);
          if (!isDeepStrictEqual(output, expectedOutput(input))) {
            tally.wrong += 1;
          }
        }
      } catch (error) {
        if (tally) {
          tally.failures += 1;
          tally.lastError = String(error);
        }
      }
    }
  }
  const clients = [];
  for (let k = 0; k < Math.min(inFlight, count); k += 1) {
    clients.push(client());
  }
  await Promise.all(clients);
  const ended = performance.now();
  return { seconds: (ended - began) / 1000, startedSeconds: (lastStart - began) / 1000 };
}

if (spec.warmup > 0) {
  await drive(spec.warmup, spec.in_flight, null);
}
const tally = { minDuration: Infinity, wrong: 0, failures: 0, lastError: null };
const { seconds, startedSeconds } = await drive(spec.executions, spec.in_flight, tally);
const result = {
  side: 'peer',
  version,
  seconds,
  started_seconds: startedSeconds,
  executions: spec.executions,
  transitions: spec.executions * spec.transitions_per_execution,
  failures: tally.failures,
  wrong_outputs: tally.wrong,
  last_error: tally.lastError,
  min_duration_s: Number.isFinite(tally.minDuration) ? tally.minDuration : null,
  peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
